"""Exporters: each turns the serving graph into one artifact kind and reports its tensor bindings."""
