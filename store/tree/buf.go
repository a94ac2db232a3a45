package tree

import "sync"

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
