package openaitest

// SetLimits lowers a server's byte limits so that tests of them need not
// send megabytes.
func SetLimits(s *Server, maxRequest, maxRecorded int64) {
	s.mu.Lock()
	s.maxRequest, s.maxRecorded = maxRequest, maxRecorded
	s.mu.Unlock()
}
