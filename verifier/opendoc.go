package verifier

// DocSnapshotManifest is the document type (claim 1) of a snapshot
// manifest (sync/snapfile), numbered with the types above so that no
// other signed trust document can pass for a manifest.
const DocSnapshotManifest = 6

// OpenDoc verifies a trust document's signature with the root keys, with
// the same size bound as every other trust document, and returns its
// payload. It is for document types parsed outside this package, which
// must check claim 1 themselves.
func (roots RootKeys) OpenDoc(data []byte) ([]byte, error) {
	msg, err := roots.openDoc(data)
	if err != nil {
		return nil, err
	}
	return msg.Payload, nil
}
