"""Synchronization: connector spaces, scope, join rules, attribute flow, references, metaverse, pending exports."""
