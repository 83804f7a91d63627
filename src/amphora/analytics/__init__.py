"""Audience analytics: user-agent classification, access-log import, IAB download counting,
rollups, listening sessions and the insights API (STANDARDS.md §5)."""
