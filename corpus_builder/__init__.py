"""Build one deduplicated, linked movie corpus (with embeddings and a FAISS index) from many sources."""
