// Package storage keeps artifacts: the local directory store (the default)
// and the MinIO/S3 store, behind one interface, with a conformance suite
// (storage/storagetest) that every store passes. Both implement the
// runner's ArtifactStore.
package storage
