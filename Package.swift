// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bootstrap",
    // Linux only (Glibc calls, libssh2 from the distribution): no `platforms` line for macOS.
    products: [
        .executable(name: "bootstrap", targets: ["bootstrap"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibSSH2",
            pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"])]
        ),
        .target(
            name: "BootstrapCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Host protocols, endpoints, results, cancellation, BlockingQueue: what the SSH layer and the engine share.
        .target(
            name: "BootstrapTransport",
            dependencies: ["BootstrapCore"]
        ),
        .target(
            name: "BootstrapEngine",
            dependencies: ["BootstrapCore", "BootstrapTransport"]
        ),
        .target(
            name: "BootstrapSSH",
            dependencies: ["BootstrapCore", "BootstrapTransport", "CLibSSH2"]
        ),
        .target(
            name: "BootstrapCLI",
            dependencies: [
                "BootstrapCore", "BootstrapEngine", "BootstrapSSH", "BootstrapEC2",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "bootstrap", dependencies: ["BootstrapCLI"]),
        // scripts/bench's measuring side (fixtures, SSH round trips); not part of the product.
        .executableTarget(
            name: "bootstrap-bench",
            dependencies: [
                "BootstrapCore", "BootstrapEngine", "BootstrapSSH", "BootstrapFakeHosts",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // In-memory hosts that answer like healthy ones: the engine tests' fake, and `bootstrap-bench engine`'s hosts.
        .target(name: "BootstrapFakeHosts", dependencies: ["BootstrapEngine"], path: "Tests/BootstrapFakeHosts"),
        // EC2: SigV4, credentials, the Query API client, host discovery and security-group rules (issue 15).
        .target(name: "BootstrapEC2", dependencies: [
            "BootstrapCore", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Test helpers shared by the test targets (not part of the product).
        .target(name: "BootstrapTestSupport", dependencies: ["BootstrapCore"], path: "Tests/BootstrapTestSupport"),
        .testTarget(name: "BootstrapCoreTests", dependencies: ["BootstrapCore", "BootstrapTestSupport"]),
        .testTarget(name: "BootstrapEngineTests", dependencies: ["BootstrapEngine", "BootstrapFakeHosts"]),
        .testTarget(name: "BootstrapSSHTests", dependencies: ["BootstrapSSH", "BootstrapTransport", "BootstrapTestSupport"]),
        .testTarget(name: "BootstrapEC2Tests", dependencies: ["BootstrapEC2", "BootstrapTestSupport"]),
        .testTarget(name: "BootstrapCLITests", dependencies: ["BootstrapCLI", "BootstrapCore", "BootstrapEC2", "BootstrapTestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "EndToEndTests", dependencies: ["BootstrapCore", "BootstrapTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
