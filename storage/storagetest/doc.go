// Package storagetest is the conformance suite every artifact store must
// pass, and a helper that starts a real MinIO server for tests.
//
// To add a store, write a test that calls Run with a function returning a
// fresh, empty store for each subtest:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store {
//			s, err := storage.NewLocal(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite only uses the store's own URIs (RunRoot plus task and output
// names), so it runs unchanged against local paths and object URIs.
//
// StartMinIO runs a MinIO server on 127.0.0.1 with a temporary data
// directory and random credentials. The binary comes from $MLPIPE_MINIO_BIN
// or from scripts/minio.sh (which builds it once). When neither works the
// test is skipped, unless MLPIPE_REQUIRE_MINIO=1 or CI is set, when it
// fails. Freeze and Thaw stop and resume the server process (SIGSTOP,
// SIGCONT); NewStallProxy puts a TCP proxy in front of it that can stop
// forwarding, or forward slowly, on command.
package storagetest
