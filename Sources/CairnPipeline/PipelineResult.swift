import CairnStore
import Foundation

/// What a pipeline run ended with: the reference's PipelineResult, plus the run and the
/// final artifact in the store.
public struct PipelineResult: Sendable {
    public var runID: Int64
    public var status: RunStatus
    public var pipelineID: String
    public var finalModelPath: String?
    public var finalArtifact: ArtifactID?
    public var stagesCompleted: [String]
    public var totalTimeSeconds: Double
    /// Seconds spent waiting for stage processes (training, merge) and for gate checks; the
    /// rest of totalTimeSeconds is orchestration (configs, store, lineage, cache, journal).
    public var trainingSeconds: Double
    public var gateSeconds: Double
    public var orchestrationSeconds: Double { max(0, totalTimeSeconds - trainingSeconds - gateSeconds) }
    public var stageResults: [String: [String: JSONValue]]
    public var errors: [String]
    public var notes: [String]
    public var success: Bool { status == .succeeded }

    /// pipeline_result.json with the reference's keys (and the run id and final artifact).
    public var json: JSONValue {
        .object([
            "success": .bool(success), "pipeline_id": .string(pipelineID),
            "final_model_path": finalModelPath.map { .string($0) } ?? .null,
            "stages_completed": .array(stagesCompleted.map { .string($0) }),
            "total_time_seconds": .number(totalTimeSeconds),
            "stage_results": .object(stageResults.mapValues { .object($0) }),
            "errors": .array(errors.map { .string($0) }),
            "timestamp": .string(ISO8601DateFormatter().string(from: Date())),
            "run_id": .number(Double(runID)), "status": .string(status.rawValue),
            "final_artifact": finalArtifact.map { .string($0.description) } ?? .null,
            "timings": .object(["total_seconds": .number(totalTimeSeconds), "stage_process_seconds": .number(trainingSeconds),
                                "gate_seconds": .number(gateSeconds), "orchestration_seconds": .number(orchestrationSeconds)]),
        ])
    }

    /// The reference's summary block.
    public var summary: String {
        var s = String(repeating: "=", count: 50) + "\nPIPELINE RESULT\n" + String(repeating: "=", count: 50) + "\n"
        s += "Run: \(runID) (\(status.rawValue))\n"
        s += "Success: \(success ? "True" : "False")\n"
        s += "Stages completed: \(stagesCompleted.joined(separator: ", "))\n"
        s += String(format: "Total time: %.1f minutes (%.2f s: stage processes %.2f s, gates %.2f s, orchestration %.2f s)\n",
                    totalTimeSeconds / 60, totalTimeSeconds, trainingSeconds, gateSeconds, orchestrationSeconds)
        if let p = finalModelPath { s += "Final model: \(p)\n" }
        if let a = finalArtifact { s += "Final artifact: \(a)\n" }
        if !errors.isEmpty { s += "\nErrors:\n" + errors.map { "  - \($0)\n" }.joined() }
        return s
    }
}
