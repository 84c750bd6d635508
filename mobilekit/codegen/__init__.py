"""SDK code generation from the contract (jinja2 templates under ``templates/``)."""
