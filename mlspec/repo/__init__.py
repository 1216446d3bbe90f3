"""The spec repo as git sees it: specs at a ref (read from git objects, never checked out),
what changed between refs, and the provenance of an apply. Reads git only; writes nothing."""
