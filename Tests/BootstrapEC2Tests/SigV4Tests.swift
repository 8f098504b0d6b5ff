import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEC2

/// AWS's published Signature Version 4 test suite ("aws-sig-v4-test-suite", Copyright 2017 Amazon.com, Inc. or
/// its affiliates; as mirrored in public SDK repositories, e.g. bazelbuild/bazel third_party/aws-sig-v4-test-suite).
/// Credentials, region, service and date are the suite's; each case gives the request (`.req`) and the expected
/// `.authz`, and where the suite has them the canonical request (`.creq`) and string to sign (`.sts`).
enum SigV4Suite {
    static let accessKeyId = "AKIDEXAMPLE"
    static let secret = Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let region = "us-east-1"
    static let service = "service"
    static let date = "20150830T123600Z"
    static let stsToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var request: SigV4.Request
        var authz: String
        var creq: String? = nil
        var sts: String? = nil
        var testDescription: String { name }
    }

    static func h(_ extra: [(String, String)] = []) -> [SigV4.Header] {
        [SigV4.Header("Host", "example.amazonaws.com")] + extra.map { SigV4.Header($0.0, $0.1) }
            + [SigV4.Header("X-Amz-Date", date)]
    }

    static let cases: [Case] = [
        Case(name: "get-vanilla", request: .init(method: "GET", path: "/", headers: h()),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Case(name: "get-vanilla-query-order-key-case",
             request: .init(method: "GET", path: "/", query: [.init("Param2", "value2"), .init("Param1", "value1")], headers: h()),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Case(name: "get-vanilla-query-order-value",
             request: .init(method: "GET", path: "/", query: [.init("Param1", "value2"), .init("Param1", "value1")], headers: h()),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
        Case(name: "get-vanilla-utf8-query",
             request: .init(method: "GET", path: "/", query: [.init("ሴ", "bar")], headers: h()),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        Case(name: "get-unreserved",
             request: .init(method: "GET", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", headers: h()),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        Case(name: "get-header-value-trim",
             request: .init(method: "GET", path: "/", headers: h([("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")])),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        Case(name: "post-vanilla", request: .init(method: "POST", path: "/", headers: h()),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        Case(name: "post-x-www-form-urlencoded",
             request: .init(method: "POST", path: "/", headers: [SigV4.Header("Content-Type", "application/x-www-form-urlencoded")] + h(),
                            body: Data("Param1=value1".utf8)),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
             creq: "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
             sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"),
        Case(name: "post-x-www-form-urlencoded-parameters",
             request: .init(method: "POST", path: "/", headers: [SigV4.Header("Content-Type", "application/x-www-form-urlencoded; charset=utf8")] + h(),
                            body: Data("Param1=value1".utf8)),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
             creq: "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
        Case(name: "post-sts-header-before",
             request: .init(method: "POST", path: "/", headers: h([("X-Amz-Security-Token", stsToken)])),
             authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    ]
}

@Suite struct SigV4Tests {
    @Test(arguments: SigV4Suite.cases)
    func testSuiteVector(_ c: SigV4Suite.Case) throws {
        let s = try SigV4.signature(for: c.request, accessKeyId: SigV4Suite.accessKeyId, secret: SigV4Suite.secret,
                                    region: SigV4Suite.region, service: SigV4Suite.service)
        if let creq = c.creq { #expect(s.canonicalRequest == creq) }
        if let sts = c.sts { #expect(s.stringToSign == sts) }
        #expect(s.authorization == c.authz)
    }

    /// The suite's get-vanilla-query-order-key canonical request and string to sign (its `.creq`, `.sts`).
    @Test func canonicalQueryOrderKey() throws {
        let r = SigV4.Request(method: "GET", path: "/", query: [.init("Param1", "value2"), .init("Param1", "Value1")],
                              headers: SigV4Suite.h())
        let s = try SigV4.signature(for: r, accessKeyId: SigV4Suite.accessKeyId, secret: SigV4Suite.secret,
                                    region: SigV4Suite.region, service: SigV4Suite.service)
        #expect(s.canonicalRequest == "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(s.authorization.hasSuffix("Signature=eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"))
    }

    @Test func signAddsDateAndSessionToken() throws {
        let creds = AWSCredentials(accessKeyId: SigV4Suite.accessKeyId, secretAccessKey: SigV4Suite.secret,
                                   sessionToken: Secret(SigV4Suite.stsToken))
        let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
        #expect(SigV4.amzDate(date) == SigV4Suite.date)
        let headers = try SigV4.sign(.init(method: "POST", path: "/", headers: [SigV4.Header("Host", "example.amazonaws.com")]),
                                     credentials: creds, region: SigV4Suite.region, service: SigV4Suite.service,
                                     date: date)
        #expect(headers.first { $0.name == "X-Amz-Security-Token" }?.value == SigV4Suite.stsToken)
        // The same signature as the suite's post-sts-header-before.
        #expect(headers.first { $0.name == "Authorization" }?.value
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead")
    }

    @Test func missingDateIsAnError() {
        #expect(throws: SigV4Error.self) {
            try SigV4.signature(for: .init(method: "GET", headers: [SigV4.Header("Host", "h")]), accessKeyId: "a",
                                secret: Secret("s"), region: "r", service: "s")
        }
    }
}
