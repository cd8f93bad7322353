"""The on-storage format: config, packs, index, trees, snapshots, and the commit protocol.

Knows nothing about Jenkins; see docs/FORMAT.md for the byte-level description.
"""
