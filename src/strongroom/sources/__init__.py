"""Adapters layer: one module per data source behind one small Source protocol, registered in one dict."""
