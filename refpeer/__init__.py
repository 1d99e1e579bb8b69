"""The reference peer: a Python stand-in for `ai-memory` (alphaonedev/ai-memory-mcp) with seeded defects.

It emulates the real 0.6.3 release (silent upsert on a duplicate title, one-page catch-up ticks, the 43 MCP
tools without profiles) minus its known defects, which are seeded defects instead, and prints
`ai-memory 0.6.3` for `--version`. See refpeer/README.md.
"""

VERSION = "0.6.3"
