"""The reference peer: a Python stand-in for `ai-memory` (alphaonedev/ai-memory-mcp) with seeded defects.

It emulates the v0.6.3.1 surface (409 on duplicate titles, catch-up loop, 43-tool MCP full set) and prints
`ai-memory 0.6.3` for `--version`. See refpeer/README.md.
"""

VERSION = "0.6.3"
