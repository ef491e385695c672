import Foundation
import Testing
@testable import CairnTrain

func trainerFixture(_ name: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturePath("trainers/" + name)))) as! [String: Any]
}

func floats(_ v: Any?) -> [Float] {
    func flat(_ x: Any) -> [Double] { (x as? [Any]).map { $0.flatMap(flat) } ?? [(x as? Double) ?? Double(x as? Int ?? 0)] }
    return flat(v!).map(Float.init)
}

@Suite("Golden: optimizer, schedules, clipping and DPO against torch, transformers and TRL")
struct TrainerGoldenTests {
    @Test func adamWMatchesTorchStepForStep() throws {
        for case_ in try trainerFixture("adamw.json")["cases"] as! [[String: Any]] {
            let betas = case_["betas"] as! [Double]
            let shape = case_["shape"] as! [Int]
            let p = Tensor(shape: shape, values: floats(case_["param_init"]))
            let opt = AdamW(parameters: [p], hyper: .init(beta1: betas[0], beta2: betas[1], eps: case_["eps"] as! Double,
                                                           weightDecay: case_["weight_decay"] as! Double))
            for step in case_["steps"] as! [[String: Any]] {
                let g = Tensor(shape: shape, values: floats(step["grad"]))
                opt.update(gradients: [g], learningRate: step["lr"] as! Double)
                let name = case_["name"] as! String
                #expect(p.maxAbsDifference(Tensor(shape: shape, values: floats(step["param"]))) <= 1e-6, "\(name) step \(step["step"]!) param")
                // Moments to a few fp32 ulps (torch fuses lerp; the order of rounding differs by one ulp).
                expectClose(opt.expAvg[0], Tensor(shape: shape, values: floats(step["exp_avg"])), relative: 1e-6, "\(name) exp_avg")
                expectClose(opt.expAvgSq[0], Tensor(shape: shape, values: floats(step["exp_avg_sq"])), relative: 1e-6, "\(name) exp_avg_sq")
            }
        }
    }

    @Test func schedulesMatchTransformers() throws {
        let f = try trainerFixture("schedules.json")
        let base = f["base_lr"] as! Double, warm = f["num_warmup_steps"] as! Int, total = f["num_training_steps"] as! Int
        let schedules = f["schedules"] as! [String: [String: Any]]
        for (name, kind) in [("linear", LearningRateSchedule.Kind.linear), ("cosine", .cosine), ("constant_with_warmup", .constant)] {
            let expected = schedules[name]!["lr_per_optimizer_step"] as! [Double]
            let s = LearningRateSchedule(kind: kind, baseRate: base, warmupSteps: warm, totalSteps: total)
            for (i, lr) in expected.enumerated() { #expect(abs(s.rate(at: i) - lr) <= 1e-12 * max(1, lr), "\(name) step \(i)") }
        }
        let ratios = (f["warmup_steps_from_ratio"] as! [String: Any])["get_warmup_steps_results"] as! [String: [String: Int]]
        for (key, totals) in ratios where key.contains("0.1") || key.contains("0.5") {
            let ratio = Double(key.split(separator: "=")[1])!
            for (t, w) in totals { #expect(LearningRateSchedule.warmupSteps(ratio: ratio, totalSteps: Int(t)!) == w) }
        }
    }

    @Test func clippingMatchesClipGradNorm() throws {
        for c in try trainerFixture("clip.json")["cases"] as! [[String: Any]] {
            let shapes = c["shapes"] as! [[Int]]
            let grads = zip(shapes, c["grads"] as! [Any]).map { Tensor(shape: $0, values: floats($1)) }
            let norm = clipGradientNorm(grads, maxNorm: c["max_norm"] as! Double)
            #expect(abs(norm - (c["total_norm"] as! Double)) < 1e-5)
            for (g, want) in zip(grads, zip(shapes, c["clipped_grads"] as! [Any]).map { Tensor(shape: $0, values: floats($1)) }) {
                #expect(g.maxAbsDifference(want) < 1e-6)
            }
        }
    }

    @Test func dpoLossesMetricsAndGradientsMatchTRL() throws {
        let f = try trainerFixture("dpo.json")
        let b = f["batch"] as! [String: Any]
        let batch = DPOLoss.Batch(policyChosen: b["policy_chosen_logps"] as! [Double], policyRejected: b["policy_rejected_logps"] as! [Double],
                                  referenceChosen: b["reference_chosen_logps"] as! [Double], referenceRejected: b["reference_rejected_logps"] as! [Double],
                                  chosenTokens: b["chosen_num_tokens"] as? [Int], rejectedTokens: b["rejected_num_tokens"] as? [Int])
        for c in f["configs"] as! [[String: Any]] {
            let kind = DPOLoss.Kind(rawValue: c["loss_type"] as! String)!
            let ls = c["label_smoothing"] as! Double
            let loss = try DPOLoss(kind: kind, beta: c["beta"] as! Double, labelSmoothing: kind == .sigmoid || kind == .robust ? ls : 0)
            let r = loss.evaluate(batch)
            let what = "\(kind) β=\(loss.beta) ls=\(ls)"
            #expect(abs(r.loss - (c["mean_loss"] as! Double)) < 1e-12, "\(what)")
            for (a, e) in zip(r.losses, c["per_example_loss"] as! [Double]) { #expect(abs(a - e) < 1e-12, "\(what)") }
            for (key, value) in c["metrics"] as! [String: Double] { #expect(abs(r.metrics[key]! - value) < 1e-12, "\(what) \(key)") }
            for (a, e) in zip(r.gradChosen, c["grad_mean_loss_wrt_policy_chosen_logps"] as! [Double]) { #expect(abs(a - e) < 1e-12, "\(what) ∂πc") }
            for (a, e) in zip(r.gradRejected, c["grad_mean_loss_wrt_policy_rejected_logps"] as! [Double]) { #expect(abs(a - e) < 1e-12, "\(what) ∂πr") }
        }
        // Policy equal to the reference: ln 2 and zero rewards for the sigmoid loss.
        let same = try DPOLoss().evaluate(DPOLoss.Batch(policyChosen: [-3, -9], policyRejected: [-4, -2], referenceChosen: [-3, -9], referenceRejected: [-4, -2]))
        #expect(abs(same.loss - log(2)) < 1e-15)
        #expect(same.metrics["rewards/chosen"] == 0 && same.metrics["rewards/margins"] == 0)
    }
}
