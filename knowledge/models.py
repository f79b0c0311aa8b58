"""Knowledge bases, documents and chunks (tenant schema, pgvector). Filled by the knowledge-base issue."""
