"""Migration aids: ``theus.compat.v3`` runs Theus 3 programs unchanged where it can (spec/19)."""
