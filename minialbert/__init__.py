"""minialbert: a readable PyTorch ALBERT that matches transformers."""
