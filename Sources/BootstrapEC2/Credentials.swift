import BootstrapCore
import Foundation

/// Credentials for signing. The secret and session token are `Secret`s: printing the credentials, or an error
/// about them, shows the access key id and where they came from, never the secret.
public struct AWSCredentials: Sendable, CustomStringConvertible {
    public var accessKeyId: String
    public var secretAccessKey: Secret
    public var sessionToken: Secret?
    /// Where they were found: `environment`, or a file and profile.
    public var source: String

    public init(accessKeyId: String, secretAccessKey: Secret, sessionToken: Secret? = nil, source: String = "given") {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }

    public var secrets: [Secret] { [secretAccessKey] + (sessionToken.map { [$0] } ?? []) }

    public var description: String {
        "AWS credentials \(accessKeyId) from \(source)\(sessionToken == nil ? "" : " (temporary, with a session token)")"
    }
}

/// What the usual chain found: the credentials and the region (either may be missing from it).
public struct AWSProfileResolution: Sendable {
    public var credentials: AWSCredentials
    public var region: String?
}

public enum AWSCredentialsError: Error, CustomStringConvertible, Equatable {
    case incompleteEnvironment(missing: String)
    case profileNotFound(profile: String, files: [String])
    case incompleteProfile(profile: String, file: String, missing: String)
    case noCredentials(profile: String, looked: [String])

    public var description: String {
        switch self {
        case .incompleteEnvironment(let missing):
            return "AWS credentials: \(missing) is not set (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together)"
        case .profileNotFound(let profile, let files):
            return "AWS credentials: profile '\(profile)' (AWS_PROFILE) is in none of \(files.joined(separator: ", "))"
        case .incompleteProfile(let profile, let file, let missing):
            return "AWS credentials: profile '\(profile)' in \(file) has no \(missing)"
        case .noCredentials(let profile, let looked):
            return "AWS credentials: none found for profile '\(profile)'; looked in \(looked.joined(separator: ", ")). "
                + "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add the profile to ~/.aws/credentials"
        }
    }
}

/// The usual chain, as the AWS CLI and SDKs read it:
/// 1. `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optional `AWS_SESSION_TOKEN`;
/// 2. the profile `AWS_PROFILE` (default `default`) in `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`),
///    then in `~/.aws/config` (`AWS_CONFIG_FILE`, where a profile's section is `[profile NAME]`).
/// The region is `AWS_REGION`, then `AWS_DEFAULT_REGION`, then the profile's `region` in the config file.
public enum AWSCredentialChain {
    public struct Files: Sendable {
        /// Path as shown in messages, and the file's text (nil when there is no such file).
        public var credentials: (path: String, text: String?)
        public var config: (path: String, text: String?)
        public init(credentials: (path: String, text: String?), config: (path: String, text: String?)) {
            self.credentials = credentials
            self.config = config
        }
    }

    public static func filePaths(environment: [String: String]) -> (credentials: String, config: String) {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials",
                environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config")
    }

    /// Reads the two files on a thread of its own (not the cooperative pool), then resolves.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) async throws
        -> AWSProfileResolution {
        let paths = filePaths(environment: environment)
        let texts: (String?, String?) = await withCheckedContinuation { cont in
            DispatchQueue.global().async {
                cont.resume(returning: (try? String(contentsOfFile: paths.credentials, encoding: .utf8),
                                        try? String(contentsOfFile: paths.config, encoding: .utf8)))
            }
        }
        return try resolve(environment: environment,
                           files: Files(credentials: (paths.credentials, texts.0), config: (paths.config, texts.1)))
    }

    public static func resolve(environment env: [String: String], files: Files) throws -> AWSProfileResolution {
        let profile = env["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let credentialsFile = files.credentials.text.map(INI.parse) ?? [:]
        let configFile = files.config.text.map(INI.parse) ?? [:]
        let configSection = configFile[profile == "default" ? "default" : "profile \(profile)"]
            ?? configFile[profile]
        let region = [env["AWS_REGION"], env["AWS_DEFAULT_REGION"], configSection?["region"]]
            .compactMap { $0 }.first { !$0.isEmpty }

        let id = env["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = env["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if id != nil || secret != nil {
            guard let id else { throw AWSCredentialsError.incompleteEnvironment(missing: "AWS_ACCESS_KEY_ID") }
            guard let secret else { throw AWSCredentialsError.incompleteEnvironment(missing: "AWS_SECRET_ACCESS_KEY") }
            let token = env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : Secret($0) }
            return AWSProfileResolution(
                credentials: AWSCredentials(accessKeyId: id, secretAccessKey: Secret(secret), sessionToken: token,
                                            source: "environment"),
                region: region)
        }

        for (path, section) in [(files.credentials.path, credentialsFile[profile]),
                                (files.config.path, configSection)] {
            guard let section else { continue }
            let id = section["aws_access_key_id"], secret = section["aws_secret_access_key"]
            if id == nil && secret == nil { continue }
            guard let id, !id.isEmpty else {
                throw AWSCredentialsError.incompleteProfile(profile: profile, file: path, missing: "aws_access_key_id")
            }
            guard let secret, !secret.isEmpty else {
                throw AWSCredentialsError.incompleteProfile(profile: profile, file: path,
                                                            missing: "aws_secret_access_key")
            }
            let token = section["aws_session_token"].flatMap { $0.isEmpty ? nil : Secret($0) }
            return AWSProfileResolution(
                credentials: AWSCredentials(accessKeyId: id, secretAccessKey: Secret(secret), sessionToken: token,
                                            source: "\(path) [\(profile)]"),
                region: region)
        }
        if profile != "default" && credentialsFile[profile] == nil && configSection == nil {
            throw AWSCredentialsError.profileNotFound(profile: profile,
                                                      files: [files.credentials.path, files.config.path])
        }
        throw AWSCredentialsError.noCredentials(
            profile: profile, looked: ["AWS_ACCESS_KEY_ID", files.credentials.path, files.config.path])
    }
}

/// The INI dialect of `~/.aws/credentials` and `~/.aws/config`: `[section]`, `key = value`, `#`/`;` comments;
/// indented lines (nested settings such as `s3 =`) are skipped.
enum INI {
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if raw.first == " " || raw.first == "\t" { continue }
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().split(separator: " ", omittingEmptySubsequences: true)
                    .joined(separator: " ")
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            sections[current]?[key] = value
        }
        return sections
    }
}
