package privtest

import (
	"testing"
)

// TestPrivilege runs every class of attack on the privilege boundary, one
// subtest each, as the suite's users against the setuid install. A class
// fails when any of its spellings worked; the message names the spelling,
// the command line and the evidence.
func TestPrivilege(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	s := the
	for _, c := range []struct {
		name string
		f    func(*testing.T, *suite)
	}{
		{"RootOnlyFlags", testRootOnlyFlags},               // 1
		{"FlagValuesAsCommands", testFlagValuesAsCommands}, // 2
		{"InternalRoles", testInternalRoles},               // 3
		{"SetuidInJailRoots", testSetuidInJailRoots},       // 4
		{"InheritedDescriptors", testInheritedDescriptors}, // 5
		{"SharedPersistentJail", testSharedPersistentJail}, // 6
		{"OtherUsersSessions", testOtherUsersSessions},     // 7
		{"SupplementaryGroups", testSupplementaryGroups},   // 8
		{"LongConfigLine", testLongConfigLine},             // 8
		{"BinaryConfig", testBinaryConfig},                 // 8
		{"CorruptSessionState", testCorruptSessionState},   // 8
	} {
		t.Run(c.name, func(t *testing.T) {
			defer s.endAll()
			c.f(t, s)
		})
	}
	// Whatever the sessions made goes with them; what is left in the
	// users' reach now, nobody removes.
	t.Run("NothingRootOwnedLeft", func(t *testing.T) {
		s.endAll()
		s.checkReach(t, "after every attack, with every session ended")
	})
}
