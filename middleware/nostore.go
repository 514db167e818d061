package middleware

import (
	"io"
	"net/http"
)

// noStoreWriter is the ResponseWriter a handler gets on a request where
// the middleware set or cleared the session (on any other request the
// handler gets the server's own, unwrapped). Whatever the handler put in
// the header, the response goes out with Cache-Control: no-store and
// Vary on Cookie and Authorization (Auth.noStore): it is fixed as the
// header is written, by WriteHeader, the first Write or ReadFrom, a
// Flush, or after the handler returns having written nothing.
//
// It embeds the server's ResponseWriter and implements Unwrap, so
// http.ResponseController reaches everything the server offers: Hijack,
// SetReadDeadline, SetWriteDeadline, EnableFullDuplex. Flush goes through
// the wrapper, which fixes the header first. Not safe for concurrent use,
// like any ResponseWriter.
type noStoreWriter struct {
	http.ResponseWriter
	a *Auth
	// sealed is true once a final header was fixed and written.
	sealed bool
}

// seal fixes the header if it has not been written yet.
func (w *noStoreWriter) seal() {
	if !w.sealed {
		w.sealed = true
		w.a.noStore(w.ResponseWriter.Header())
	}
}

// WriteHeader fixes the header and writes it. An informational (1xx)
// status leaves the final header still to be fixed.
func (w *noStoreWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.seal()
	} else {
		w.a.noStore(w.ResponseWriter.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write fixes the header before the first byte.
func (w *noStoreWriter) Write(b []byte) (int, error) {
	w.seal()
	return w.ResponseWriter.Write(b)
}

// ReadFrom fixes the header, then copies with the server's ReadFrom
// (sendfile) when it has one.
func (w *noStoreWriter) ReadFrom(r io.Reader) (int64, error) {
	w.seal()
	return io.Copy(w.ResponseWriter, r)
}

// Flush fixes the header, then flushes (if the server can).
func (w *noStoreWriter) Flush() { w.FlushError() }

// FlushError fixes the header, then flushes; the error is
// http.ErrNotSupported when the server cannot flush. It is what
// http.ResponseController.Flush calls.
func (w *noStoreWriter) FlushError() error {
	w.seal()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the server's ResponseWriter, for http.ResponseController.
func (w *noStoreWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
