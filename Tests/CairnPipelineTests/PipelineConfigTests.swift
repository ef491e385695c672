import Foundation
import Testing
@testable import CairnPipeline

/// pipeline.yaml: the reference's keys, errors with file:line and suggestions, paths kept inside the repository.
@Suite("Pipeline configs")
struct PipelineConfigTests {
    /// A repository (a directory with .git) with an sft config, a dataset and `pipeline.yaml` = text.
    func repo(_ text: String) throws -> (root: String, file: String) {
        let root = NSTemporaryDirectory() + "cairn-pcfg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root + "/.git", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/p/data", withIntermediateDirectories: true)
        try "lora_r: 8\n".write(toFile: root + "/p/sft_config.yaml", atomically: true, encoding: .utf8)
        try "{\"prompt\": \"a\", \"completion\": \"b\"}\n".write(toFile: root + "/p/data/sft.jsonl", atomically: true, encoding: .utf8)
        try text.write(toFile: root + "/p/pipeline.yaml", atomically: true, encoding: .utf8)
        return (root, root + "/p/pipeline.yaml")
    }

    static let reference = """
        pipeline_id: task-api-v1.0
        base_model: unsloth/Qwen2.5-3B-Instruct-bnb-4bit
        output_dir: ./artifacts

        stages:
          - name: sft
            enabled: true
            config_path: ./sft_config.yaml
            timeout_minutes: 180
            retry_count: 2

          - name: merge
            enabled: true
            timeout_minutes: 30
            retry_count: 1

          - name: dpo
            enabled: false
            config_path: ./sft_config.yaml
            timeout_minutes: 120
            retry_count: 2

        validation:
          max_loss: 2.0
          min_accuracy: 0.7
          check_nan: true
          custom_checks:
            - output_format_valid
            - no_harmful_content

        gpu_memory_fraction: 0.9
        checkpoint_every_n_steps: 100
        save_intermediate: true
        upload_to_hub: false

        """

    @Test func theReferenceConfigIsReadUnchanged() throws {
        let (root, file) = try repo(Self.reference + "datasets:\n  sft: data/sft.jsonl\npromote_to: task-api@production\n")
        let c = try PipelineConfig.load(root + "/p")
        #expect(c.pipelineID == "task-api-v1.0" && c.file == file)
        #expect(!c.baseModelIsPath && c.baseModel == "unsloth/Qwen2.5-3B-Instruct-bnb-4bit")
        #expect(c.stages.map(\.name) == [.sft, .merge, .dpo] && c.stages.map(\.enabled) == [true, true, false])
        #expect(c.stages[0].timeoutMinutes == 180 && c.stages[0].retryCount == 2 && c.stages[0].configPath == root + "/p/sft_config.yaml")
        #expect(c.validation.maxLoss == 2 && c.validation.minAccuracy == 0.7 && c.validation.checkNaN)
        #expect(c.validation.customChecks.map(\.name) == ["output_format_valid", "no_harmful_content"])
        #expect(c.validation.customChecks.map(\.blocking) == [false, true])
        #expect(c.checkpointEveryNSteps == 100 && c.saveIntermediate && !c.uploadToHub)
        #expect(c.ignoredKeys == ["gpu_memory_fraction", "upload_to_hub"])
        #expect(c.outputDir == root + "/p/artifacts" && c.repository == root)
        #expect(c.datasets["sft"] == root + "/p/data/sft.jsonl" && c.promoteTo == "task-api@production")
    }

    @Test(arguments: [
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n    timeout_minuts: 3\n", 6, "unknown key 'timeout_minuts' — did you mean 'timeout_minutes'?"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\nvalidaton:\n  max_loss: 1\n", 6, "unknown key 'validaton' — did you mean 'validation'?"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\nvalidation:\n  max_loss: low\n", 7, "key 'max_loss' must be a number, not 'low'"),
        ("base_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n", 1, "missing required key 'pipeline_id'"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: train\n", 4, "unknown stage 'train'"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n", 4, "stage 'sft' needs 'config_path'"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\nvalidation:\n  custom_checks:\n    - output_format_vaild\n", 8,
         "unknown custom check 'output_format_vaild' — did you mean 'output_format_valid'?"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\nvalidation:\n  custom_checks:\n    - name: shell\n", 8,
         "custom check 'shell' refused: only built-in checks run"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ../../etc/passwd\n", 5, "path '../../etc/passwd' leaves the repository"),
        ("pipeline_id: x\nbase_model: /etc\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n", 2, "path '/etc' leaves the repository"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\ndatasets:\n  sft: data/missing.jsonl\n", 7, "no such file 'data/missing.jsonl'"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\ndatasets:\n  sft: ../data/missing.jsonl\n", 7, "no such file '../data/missing.jsonl'"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: dpo\n    config_path: ./sft_config.yaml\n  - name: sft\n    config_path: ./sft_config.yaml\n", 4, "stages run in the order"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: merge\n  - name: export\n    type: q4_k\n", 6, "key 'type' must be one of f32, f16, q8_0, not 'q4_k'"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: export\n    format: onnx\n", 5, "key 'format': Cairn exports gguf, not 'onnx'"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n    type: f16\n", 6, "key 'type' belongs to the export stage, not 'sft'"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n  - name: export\n", 6, "stage 'export' needs a whole model"),
        ("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n  - name: dpo\n    config_path: ./sft_config.yaml\n", 6,
         "stage 'dpo' after 'sft' needs stage 'merge' between them"),
    ])
    func badConfigsNameFileLineAndKey(text: String, line: Int, message: String) throws {
        let (_, file) = try repo(text)
        do {
            _ = try PipelineConfig.load(file)
            Issue.record("accepted: \(text)")
        } catch let e as ConfigError {
            #expect(e.file == file && e.line == line, "\(e)")
            #expect(e.message.contains(message), "\(e)")
        }
    }

    @Test func aSymlinkThatLeavesTheRepositoryIsRefused() throws {
        let (root, file) = try repo("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\ndatasets:\n  sft: data/link.jsonl\n")
        try FileManager.default.createSymbolicLink(atPath: root + "/p/data/link.jsonl", withDestinationPath: "/etc/hostname")
        #expect { _ = try PipelineConfig.load(file) } throws: { e in
            "\(e)".contains("is a symlink that leaves the repository") && (e as? ConfigError)?.line == 7
        }
    }
}

extension PipelineConfigTests {
    /// An output directory that does not exist yet, above the pipeline's directory but inside
    /// the repository, is fine (the example writes ../../artifacts).
    @Test func aNewOutputDirectoryUpTheTreeButInsideTheRepositoryIsAccepted() throws {
        let (root, file) = try repo("pipeline_id: x\nbase_model: m\noutput_dir: ../artifacts/x\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n")
        let c = try PipelineConfig.load(file)
        #expect(c.outputDir == root + "/artifacts/x")
    }
}

extension PipelineConfigTests {
    /// A typo in a stage config stops the run before anything trains, naming that file and line.
    @Test func stageConfigsAreCheckedWhenThePipelineIsRead() throws {
        let (root, file) = try repo("pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n")
        try "lora_r: 8\nlearning_rte: 1e-4\n".write(toFile: root + "/p/sft_config.yaml", atomically: true, encoding: .utf8)
        #expect { _ = try PipelineConfig.load(file) } throws: { e in
            guard let c = e as? ConfigError else { return false }
            return c.file == root + "/p/sft_config.yaml" && c.line == 2 && c.message == "unknown key 'learning_rte' — did you mean 'learning_rate'?"
        }
    }
}
