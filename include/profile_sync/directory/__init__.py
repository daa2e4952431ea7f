"""Directory connections: readers that turn a directory into entries.

A reader yields :class:`~profile_sync.directory.entries.Entry` tuples (entries
in); ``sync.connector_space`` turns them into a frame (frames out). A faster
reader can sit beside the existing ones without touching the engine.
"""

from profile_sync.directory.entries import DirectoryReader, Entry

__all__ = ["DirectoryReader", "Entry"]
