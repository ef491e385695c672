import CairnTestSupport
import CairnTrain
import Foundation
import Testing
@testable import CairnPipeline

/// Issue 13 for YAML configs: input that is too deep, too big, out of range or meaningless is a
/// ConfigError naming file, line and key — never a crash, an overflow or a silent acceptance.
@Suite("Config limits")
struct ConfigLimitTests {
    static let head = "pipeline_id: x\nbase_model: m\nstages:\n  - name: sft\n    config_path: ./sft_config.yaml\n"

    /// A repository holding sft_config.yaml (`sft`) and pipeline.yaml (`pipeline`); returns the pipeline's path.
    func repo(pipeline: String, sft: String = "lora_r: 8\n") throws -> (dir: String, file: String) {
        let root = NSTemporaryDirectory() + "cairn-limits-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root + "/.git", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/p", withIntermediateDirectories: true)
        try sft.write(toFile: root + "/p/sft_config.yaml", atomically: true, encoding: .utf8)
        try pipeline.write(toFile: root + "/p/pipeline.yaml", atomically: true, encoding: .utf8)
        return (root + "/p", root + "/p/pipeline.yaml")
    }

    func configError(_ body: () throws -> Void) -> ConfigError? {
        do { try body() } catch let e as ConfigError { return e } catch { Issue.record("not a ConfigError: \(error)") }
        return nil
    }

    @Test func nestingIsBoundedWhileParsing() throws {
        let ok = String(repeating: "[", count: YAMLNode.maxDepth) + String(repeating: "]", count: YAMLNode.maxDepth)
        #expect(throws: Never.self) { _ = try YAMLNode.parse(ok, file: "t.yaml") }
        let deep = "a:\n  b: " + String(repeating: "{c: ", count: 200) + "1" + String(repeating: "}", count: 200) + "\n"
        let e = configError { _ = try YAMLNode.parse(deep, file: "t.yaml") }
        #expect(e?.file == "t.yaml" && e?.line == 2, "\(String(describing: e))")
        #expect(e?.message == "key 'a.b.c.c.c.c.…': values nest deeper than 64 levels", "\(String(describing: e))")
    }

    @Test func aValueNested100000DeepInPipelineYAMLIsAnError() throws {
        let n = 100_000
        let (_, file) = try repo(pipeline: Self.head + "validation:\n  max_loss: " + String(repeating: "[", count: n) + String(repeating: "]", count: n) + "\n")
        let start = Date()
        let e = configError { _ = try PipelineConfig.load(file) }
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(e?.file == file && e?.line == 7, "\(String(describing: e))")
        #expect(e?.message.hasPrefix("key 'validation.max_loss.0.0.0.0.…': values nest deeper than 64 levels") == true, "\(String(describing: e))")
    }

    @Test func aFileOverTheSizeLimitIsAnError() throws {
        let line = "# " + String(repeating: "x", count: 1021) + "\n"  // 1 KiB a line
        let text = "lora_r: 8\n" + String(repeating: line, count: 5 * 1024)
        let e = configError { _ = try YAMLNode.parse(text, file: "big.yaml") }
        #expect(e?.file == "big.yaml" && e?.line == 4097, "\(String(describing: e))")
        #expect(e?.message.contains("at most 4194304 (4 MiB)") == true, "\(String(describing: e))")
    }

    /// Every numeric key of a stage config, one past each end of its range: an error on its line naming it.
    @Test func everyNumericStageKeyIsRangeChecked() throws {
        var cases: [(key: String, value: String)] = []
        for (key, r) in TrainingConfig.intBounds {
            cases += [(key, String(r.lowerBound - 1)), (key, String(r.upperBound + 1)), (key, "9223372036854775807")]
        }
        for (key, b) in TrainingConfig.numberBounds {
            cases += [(key, b.lowerOpen ? "\(b.lower)" : "\(b.lower - 1)"), (key, b.upperOpen ? "\(b.upper)" : "\(b.upper * 2 + 1)"), (key, ".nan")]
            if b.upper.isFinite { cases.append((key, "1e308")) }
        }
        for (key, value) in cases {
            let p = writeTemp("sft_config.yaml", "# one key out of range\n\(key): \(value)\n")
            let e = configError { _ = try TrainingConfig.load(yamlFile: p) }
            #expect(e?.file == p && e?.line == 2 && e?.message.hasPrefix("key '\(key)' must be") == true, "\(key): \(value) → \(String(describing: e))")
        }
    }

    @Test(arguments: [
        ("batch_size: 9223372036854775807\n", "key 'batch_size' must be at most 65536, not 9223372036854775807"),
        ("gradient_accumulation: 9223372036854775807\n", "key 'gradient_accumulation' must be at most 65536, not 9223372036854775807"),
        ("per_device_train_batch_size: 100000\n", "key 'per_device_train_batch_size' must be at most 65536, not 100000"),
        ("warmup_steps: 1e300\n", "key 'warmup_steps' must be in [0, 100000000], not 1e300"),
        ("learning_rate: 0\n", "key 'learning_rate' must be in (0, ∞), not 0"),
        ("target_modules: \".*\"\n", "key 'target_modules': '.*' is not one of q_proj"),
        ("target_modules: []\n", "key 'target_modules' must name at least one module"),
    ])
    func stageConfigValues(text: String, message: String) throws {
        let p = writeTemp("sft_config.yaml", text)
        let e = configError { _ = try TrainingConfig.load(yamlFile: p) }
        #expect(e?.file == p && e?.line == 1 && e?.message.hasPrefix(message) == true, "\(String(describing: e))")
    }

    /// The largest values the ranges allow cannot overflow the step arithmetic.
    @Test func theLargestAllowedValuesDoNotOverflow() throws {
        var c = try TrainingConfig(yaml: try YAMLNode.parse("batch_size: 65536\ngradient_accumulation: 65536\nepochs: 10000\n", file: "t.yaml"), file: "t.yaml")
        let steps = c.totalSteps(examples: 1 << 40)
        #expect(steps == (((1 << 40) / 65536 + 65535) / 65536) * 10_000)
        _ = c.schedule(totalSteps: steps).rate(at: steps - 1)
        c.maxSteps = 100_000_000
        #expect(c.totalSteps(examples: 1).multipliedReportingOverflow(by: c.gradientAccumulation * c.batchSize).overflow == false)
    }

    @Test(arguments: [
        ("validation:\n  max_loss: -1\n", 7, "key 'max_loss' must be in (0, 1000], not -1"),
        ("validation:\n  max_loss: 0\n", 7, "key 'max_loss' must be in (0, 1000], not 0"),
        ("validation:\n  merge_tolerance: -1e-3\n", 7, "key 'merge_tolerance' must be in (0, 1], not -1e-3"),
        ("validation:\n  custom_checks:\n    - name: output_format_valid\n      timeout_seconds: 1e26\n", 9, "key 'timeout_seconds' must be in (0, 604800], not 1e26"),
        ("validation:\n  custom_checks:\n    - name: output_format_valid\n      max_new_tokens: 9223372036854775807\n", 9, "key 'max_new_tokens' must be at most 65536"),
        ("gpu_memory_fraction: 2\n", 6, "key 'gpu_memory_fraction' must be in (0, 1], not 2"),
        ("checkpoint_every_n_steps: 9223372036854775807\n", 6, "key 'checkpoint_every_n_steps' must be at most 100000000"),
    ])
    func pipelineValues(text: String, line: Int, message: String) throws {
        let (_, file) = try repo(pipeline: Self.head + text)
        let e = configError { _ = try PipelineConfig.load(file) }
        #expect(e?.file == file && e?.line == line && e?.message.hasPrefix(message) == true, "\(String(describing: e))")
    }

    @Test(arguments: [("1e26", "key 'timeout_minutes' must be in (0, 10080], not 1e26"), ("0", "key 'timeout_minutes' must be in (0, 10080], not 0"),
                      ("-5", "key 'timeout_minutes' must be in (0, 10080], not -5")])
    func stageTimeouts(value: String, message: String) throws {
        let (_, file) = try repo(pipeline: Self.head + "    timeout_minutes: \(value)\n    retry_count: 2\n")
        let e = configError { _ = try PipelineConfig.load(file) }
        #expect(e?.file == file && e?.line == 6 && e?.message == message, "\(String(describing: e))")
    }
}

extension ConfigLimitTests {
    /// `cairn run` on each bad pipeline: exit 2 (not a signal) within 10 s, naming file, line and key.
    @Test(arguments: [
        ("validation:\n  max_loss: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n", "lora_r: 8\n",
         "pipeline.yaml:7: key 'validation.max_loss.0.0.0.0.…': values nest deeper than 64 levels"),
        ("", "batch_size: 9223372036854775807\n", "sft_config.yaml:1: key 'batch_size' must be at most 65536, not 9223372036854775807"),
        ("", "lora_r: 8\ngradient_accumulation: 9223372036854775807\n", "sft_config.yaml:2: key 'gradient_accumulation' must be at most 65536"),
        ("validation:\n  max_loss: -1\n", "lora_r: 8\n", "pipeline.yaml:7: key 'max_loss' must be in (0, 1000], not -1"),
        ("    timeout_minutes: 1e26\n", "lora_r: 8\n", "pipeline.yaml:6: key 'timeout_minutes' must be in (0, 10080], not 1e26"),
        ("", "target_modules: \".*\"\n", "sft_config.yaml:1: key 'target_modules': '.*' is not one of"),
    ])
    func cairnRunExitsTwo(pipeline: String, sft: String, message: String) throws {
        let (dir, _) = try repo(pipeline: Self.head + pipeline, sft: sft)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestProcess.cairn(release: true))
        p.arguments = ["run", dir, "--quiet"]
        p.environment = ProcessInfo.processInfo.environment.merging(["CAIRN_STORE": dir + "/../store"]) { $1 }
        let errFile = dir + "/../stderr.txt"
        FileManager.default.createFile(atPath: errFile, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errFile))
        p.standardOutput = FileHandle.nullDevice
        let start = Date()
        try p.run()
        while p.isRunning && Date().timeIntervalSince(start) < 10 { usleep(20_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        let err = try String(contentsOfFile: errFile, encoding: .utf8)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(p.terminationReason == .exit && p.terminationStatus == 2, "\(p.terminationReason) \(p.terminationStatus): \(err)")
        #expect(err.contains(dir + "/" + message), "\(err)")
    }
}
