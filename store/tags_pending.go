package store

// taggedVersions is replaced when tags land.
func (s *Store) taggedVersions() map[string]bool { return map[string]bool{} }
