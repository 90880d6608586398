// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Till",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "till", targets: ["till"]),
        .executable(name: "till-bench", targets: ["TillBench"]),
        .executable(name: "till-chaos", targets: ["TillChaos"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        // libcurl, the customer's HTTP library: a C shim (Swift cannot call variadic curl_easy_setopt)
        // and a small Swift client used for Metrc over TCP and for registers over the Unix socket.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .target(name: "CurlHTTP", dependencies: ["CCurl"]),

        // glibc's malloc.h, for `till serve`'s heap tuning.
        .systemLibrary(name: "CMalloc"),

        // JSON written by hand where every sale goes through it (answers, digests, Metrc receipt bodies).
        .target(name: "JSONWriting"),

        .target(name: "MetrcKit", dependencies: [
            "CurlHTTP", "JSONWriting",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .target(name: "MetrcSimulator", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "TillMigrations", path: "Migrations", resources: [.copy("sql")]),
        .target(name: "TillDomain"),
        .target(name: "TillStore", dependencies: [
            "TillDomain", "TillMigrations",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "TillPatients", dependencies: [
            "TillDomain", "TillStore", "MetrcKit",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // Prometheus exposition of what swift-metrics counts, with timers that take no lock.
        .target(name: "TillMetrics", dependencies: [
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .target(name: "TillReporter", dependencies: [
            "TillDomain", "TillStore", "MetrcKit", "TillPatients",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "TillAPI", dependencies: [
            "TillDomain", "TillStore", "TillReporter", "TillPatients", "MetrcKit", "JSONWriting", "TillMetrics",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], resources: [.copy("openapi.json"), .copy("Console")]),
        .executableTarget(name: "till", dependencies: [
            "CMalloc", "TillAPI", "TillReporter", "TillStore", "TillDomain", "MetrcKit", "MetrcSimulator", "JSONWriting",
            "TillMetrics",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        // What the bench and the chaos run share: the simulator in their process, `till serve` as a child, registers.
        .target(name: "TillLoad", dependencies: [
            "CurlHTTP", "MetrcSimulator",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "TillBench", dependencies: [
            "CurlHTTP", "MetrcKit", "MetrcSimulator", "TillLoad",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "TillChaos", dependencies: [
            "CurlHTTP", "MetrcSimulator", "TillLoad",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "MetrcKitTests", dependencies: [
            "MetrcKit", "MetrcSimulator", "CurlHTTP", .product(name: "MetricsTestKit", package: "swift-metrics"),
        ]),
        .testTarget(name: "MetrcSimulatorTests", dependencies: ["MetrcSimulator", "CurlHTTP"]),
        .testTarget(name: "TillDomainTests", dependencies: ["TillDomain"]),
        .testTarget(name: "TillStoreTests", dependencies: ["TillStore", "TillDomain", "TillMigrations"]),
        .testTarget(name: "TillPatientsTests", dependencies: ["TillPatients", "TillStore", "TillDomain", "MetrcKit"]),
        .testTarget(name: "TillAPITests", dependencies: [
            "TillAPI", "TillDomain", "TillReporter", "JSONWriting", "TillMetrics",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "TillEndToEndTests", dependencies: [
            "TillAPI", "TillReporter", "TillPatients", "TillStore", "TillDomain", "MetrcKit", "MetrcSimulator", "CurlHTTP",
            "TillMetrics",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
