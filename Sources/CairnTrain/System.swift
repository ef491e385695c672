// CairnTrain's system calls are CairnSystem's; these keep the names its callers use.
import CairnSystem

public typealias PeakMemory = CairnSystem.PeakMemory
typealias Allocator = CairnSystem.Allocator
