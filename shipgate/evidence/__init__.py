"""Evidence: the artifact models, their validation and verdicts, and the reports rendered from them."""
