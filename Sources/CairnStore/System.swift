// The store makes its system calls through CairnSystem (descriptors, fsync, syncfs, link, flock,
// lstat), under the names its code has always used.
import CairnSystem

public typealias SystemError = CairnSystem.SystemError
typealias FileDescriptor = CairnSystem.FileDescriptor
typealias FileLock = CairnSystem.FileLock
typealias FileInfo = CairnSystem.FileInfo

typealias FS = CairnSystem.FileSystem
typealias Processes = CairnSystem.Processes
