"""MetalCloud v2 async client."""
