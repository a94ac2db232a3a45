package bootstrap

import "runtime"

func numCPU() int { return runtime.NumCPU() }
