"""Built-in homomorphic encryption schemes."""
