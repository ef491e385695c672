import CairnSystem
import Foundation

/// An orchestration failure that is not the user's input (exit code 1).
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Stage, check and queue processes: CairnSystem's, under the names the pipeline's callers use.
public typealias Subprocess = CairnSystem.Subprocess
public typealias StopSignal = CairnSystem.StopSignal

extension CairnSystem.Subprocess {
    /// In a stage or check process started by an orchestrator (CAIRN_DIE_WITH_PARENT=its pid):
    /// die with it, so that a SIGKILLed orchestrator leaves no training running behind it.
    public static func dieWithParentIfAsked() {
        guard let s = ProcessInfo.processInfo.environment["CAIRN_DIE_WITH_PARENT"], let parent = pid_t(s) else { return }
        dieWithParent(parent)
    }
}
