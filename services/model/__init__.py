"""The job model every layer speaks: states, kinds and the rules for moving between them."""
