import BootstrapCore
import BootstrapTestSupport
import Foundation
import Testing
@testable import BootstrapEC2

@Suite struct CredentialsTests {
    static let secret = "s3cr3t/SECRET+value+0123456789abcdefghij"
    static let token = "SESSION-TOKEN-very-secret-0123456789"

    func files(credentials: String? = nil, config: String? = nil) -> AWSCredentialChain.Files {
        .init(credentials: ("/home/op/.aws/credentials", credentials), config: ("/home/op/.aws/config", config))
    }

    @Test func environmentComesFirst() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": Self.secret,
                   "AWS_SESSION_TOKEN": Self.token, "AWS_REGION": "eu-west-1"]
        let r = try AWSCredentialChain.resolve(
            environment: env, files: files(credentials: "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = x\n"))
        #expect(r.credentials.accessKeyId == "AKIAENV")
        #expect(r.credentials.secretAccessKey.revealed == Self.secret)
        #expect(r.credentials.sessionToken?.revealed == Self.token)
        #expect(r.credentials.source == "environment")
        #expect(r.region == "eu-west-1")
    }

    @Test func halfAnEnvironmentIsAnErrorNamingTheMissingVariable() {
        #expect(throws: AWSCredentialsError.incompleteEnvironment(missing: "AWS_SECRET_ACCESS_KEY")) {
            try AWSCredentialChain.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKIA"], files: files())
        }
        #expect(throws: AWSCredentialsError.incompleteEnvironment(missing: "AWS_ACCESS_KEY_ID")) {
            try AWSCredentialChain.resolve(environment: ["AWS_SECRET_ACCESS_KEY": Self.secret], files: files())
        }
    }

    @Test func profileFromCredentialsFileAndRegionFromConfig() throws {
        let credentials = """
        # comment
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = default-secret

        [ops]
        aws_access_key_id=AKIAOPS
        aws_secret_access_key=\(Self.secret)
        aws_session_token = \(Self.token)
        """
        let config = """
        [default]
        region = us-east-1
        [profile ops]
        region = ap-south-1
        s3 =
          max_concurrent_requests = 4
        """
        let r = try AWSCredentialChain.resolve(environment: ["AWS_PROFILE": "ops"],
                                               files: files(credentials: credentials, config: config))
        #expect(r.credentials.accessKeyId == "AKIAOPS")
        #expect(r.credentials.secretAccessKey.revealed == Self.secret)
        #expect(r.credentials.sessionToken?.revealed == Self.token)
        #expect(r.credentials.source == "/home/op/.aws/credentials [ops]")
        #expect(r.region == "ap-south-1")

        let d = try AWSCredentialChain.resolve(environment: [:], files: files(credentials: credentials, config: config))
        #expect(d.credentials.accessKeyId == "AKIADEFAULT")
        #expect(d.region == "us-east-1")
        // AWS_REGION wins over the config file.
        let e = try AWSCredentialChain.resolve(environment: ["AWS_DEFAULT_REGION": "sa-east-1"],
                                               files: files(credentials: credentials, config: config))
        #expect(e.region == "sa-east-1")
    }

    @Test func credentialsInTheConfigFile() throws {
        let config = "[profile build]\naws_access_key_id = AKIABUILD\naws_secret_access_key = \(Self.secret)\nregion = us-west-2\n"
        let r = try AWSCredentialChain.resolve(environment: ["AWS_PROFILE": "build"], files: files(config: config))
        #expect(r.credentials.accessKeyId == "AKIABUILD")
        #expect(r.credentials.source == "/home/op/.aws/config [build]")
        #expect(r.region == "us-west-2")
    }

    @Test func missingAndIncompleteProfiles() {
        #expect(throws: AWSCredentialsError.profileNotFound(
            profile: "nope", files: ["/home/op/.aws/credentials", "/home/op/.aws/config"])) {
            try AWSCredentialChain.resolve(environment: ["AWS_PROFILE": "nope"],
                                           files: files(credentials: "[default]\naws_access_key_id=A\naws_secret_access_key=B\n"))
        }
        #expect(throws: AWSCredentialsError.incompleteProfile(
            profile: "default", file: "/home/op/.aws/credentials", missing: "aws_secret_access_key")) {
            try AWSCredentialChain.resolve(environment: [:], files: files(credentials: "[default]\naws_access_key_id=A\n"))
        }
        #expect(throws: AWSCredentialsError.self) {
            try AWSCredentialChain.resolve(environment: [:], files: files())
        }
    }

    /// Neither the credentials' description nor any error about them shows the secret or the token.
    @Test func secretsNeverShown() throws {
        let creds = AWSCredentials(accessKeyId: "AKIAX", secretAccessKey: Secret(Self.secret),
                                   sessionToken: Secret(Self.token), source: "environment")
        for text in ["\(creds)", String(describing: creds), String(reflecting: creds)] {
            #expect(!text.contains(Self.secret))
            #expect(!text.contains(Self.token))
            #expect(text.contains("AKIAX"))
        }
        // An incomplete profile whose only value is the secret: the error names the key, not the value.
        do {
            _ = try AWSCredentialChain.resolve(environment: [:],
                                               files: files(credentials: "[default]\naws_secret_access_key = \(Self.secret)\n"))
            Issue.record("expected an error")
        } catch {
            #expect(!"\(error)".contains(Self.secret))
            #expect("\(error)".contains("aws_access_key_id"))
        }
    }

    @Test func loadReadsTheFilesOffThePool() async throws {
        let secret = Self.secret
        let dir = try await onOwnThread {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ec2-creds-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(".aws"),
                                                    withIntermediateDirectories: true)
            try "[default]\naws_access_key_id = AKIAHOME\naws_secret_access_key = \(secret)\n"
                .write(to: dir.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8)
            try "[default]\nregion = eu-north-1\n".write(to: dir.appendingPathComponent(".aws/config"),
                                                         atomically: true, encoding: .utf8)
            return dir
        }
        let r = try await AWSCredentialChain.load(environment: ["HOME": dir.path])
        _ = try await onOwnThread { try? FileManager.default.removeItem(at: dir) }
        #expect(r.credentials.accessKeyId == "AKIAHOME")
        #expect(r.region == "eu-north-1")
    }
}
