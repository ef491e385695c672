import CairnSystem
import Foundation
import Testing

@Suite struct FileLockTests {
    @Test func tryingFailsWhileAnotherHolderHasAConflictingLock() throws {
        let d = Scratch()
        let path = d.path + "/use.lock"
        var shared: FileLock? = try FileLock(path: path, exclusive: false)
        #expect(try FileLock(trying: path, exclusive: false) != nil)  // shared with shared
        #expect(try FileLock(trying: path, exclusive: true) == nil)
        #expect(shared != nil)
        shared = nil
        #expect(try FileLock(trying: path, exclusive: true) != nil)  // released with its object
    }

    @Test func blockingWaitsForTheHolderToLetGo() throws {
        let d = Scratch()
        let path = d.path + "/gc.lock"
        let holder = Holder(try FileLock(path: path, exclusive: true))
        let released = Date().addingTimeInterval(0.3)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { holder.release() }
        let lock = try FileLock(path: path, exclusive: true)  // flock locks belong to the open file: this one waits
        #expect(Date() >= released.addingTimeInterval(-0.05))
        withExtendedLifetime(lock) {}
    }
}

/// A lock that another thread lets go of.
final class Holder: @unchecked Sendable {
    private var lock: FileLock?
    init(_ lock: FileLock) { self.lock = lock }
    func release() { lock = nil }
}
