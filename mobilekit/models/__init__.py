"""Loading user models, finding their outputs, and introspection."""
