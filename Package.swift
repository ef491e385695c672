// swift-tools-version:6.0
// Cairn: GitOps for fine-tuning small language models. See ARCHITECTURE.md.
// Dependencies are the toolchain and Debian's C libraries only.
import PackageDescription

let package = Package(
    name: "cairn",
    products: [
        .executable(name: "cairn", targets: ["cairn"]),
        .library(name: "CairnSystem", targets: ["CairnSystem"]),
        .library(name: "CairnStore", targets: ["CairnStore"]),
        .library(name: "CairnTrain", targets: ["CairnTrain"]),
        .library(name: "CairnPipeline", targets: ["CairnPipeline"]),
        .library(name: "CairnGit", targets: ["CairnGit"]),
        .library(name: "CairnWatch", targets: ["CairnWatch"]),
    ],
    targets: [
        // System libraries: module.modulemap + shim.h only.
        .systemLibrary(name: "CGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // The one room for POSIX: every library below makes its system calls through it.
        .target(name: "CairnSystem"),
        .target(name: "CairnStore", dependencies: ["CairnSystem", "CSQLite", "CCrypto"]),
        // Optimised in debug builds too: the tests train real models, and the SIMD code of Ops/
        // is ~50× slower unoptimised (the DPO test: 89 s against 9 s).
        .target(name: "CairnTrain", dependencies: ["CairnSystem", "COpenBLAS"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "CairnPipeline", dependencies: ["CairnSystem", "CairnStore", "CairnTrain", "CYAML"]),
        .target(name: "CairnGit", dependencies: ["CGit2"]),
        .target(name: "CairnWatch", dependencies: ["CairnSystem", "CairnGit", "CairnPipeline", "CairnStore"]),
        .executableTarget(name: "cairn", dependencies: ["CairnSystem", "CairnStore", "CairnTrain", "CairnPipeline", "CairnGit", "CairnWatch"]),
        .executableTarget(name: "bench-store-lineage", dependencies: ["CairnStore"], path: "bench/store/lineage"),
        .executableTarget(name: "bench-train-model", dependencies: ["CairnTrain"], path: "bench/train-model/swift"),
        .executableTarget(name: "bench-train", dependencies: ["CairnTrain"], path: "bench/train/swift"),
        .executableTarget(name: "bench-slurm", dependencies: ["CairnPipeline", "CairnStore"], path: "bench/slurm/swift"),
        .executableTarget(name: "bench-smollm2", dependencies: ["CairnTrain"], path: "bench/smollm2/swift"),

        // Shared by the test targets: running processes and finding the cairn executable.
        .target(name: "CairnTestSupport", path: "Tests/CairnTestSupport"),
        .testTarget(name: "CairnSystemTests", dependencies: ["CairnSystem"]),
        .testTarget(name: "CairnStoreTests", dependencies: ["CairnStore", "cairn", "CairnTestSupport"]),
        .testTarget(name: "CairnTrainTests", dependencies: ["CairnTrain", "cairn", "CairnTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CairnPipelineTests", dependencies: ["CairnPipeline", "cairn", "CairnTestSupport"]),
        .testTarget(name: "CairnWatchTests", dependencies: ["CairnWatch", "CairnGit", "cairn", "CairnTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
