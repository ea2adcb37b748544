"""Routing: the failover loop (`router`) and the decisions it applies (`policy`)."""
