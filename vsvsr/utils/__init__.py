"""Small helpers shared by several parts of vsvsr."""
