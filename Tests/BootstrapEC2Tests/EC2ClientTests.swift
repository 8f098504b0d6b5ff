import BootstrapCore
import BootstrapTestSupport
import Foundation
import Testing
@testable import BootstrapEC2

/// The client against canned answers: parsing, error mapping, retries.
@Suite struct EC2ClientTests {
    static let fast = RetryPolicy(maxAttempts: 4, base: .milliseconds(5), cap: .milliseconds(20))

    func client(_ t: CannedTransport, credentials: AWSCredentials = testCredentials) -> EC2Client {
        EC2Client(region: "eu-west-1", credentials: credentials, endpoint: URL(string: "https://ec2.test:8443/")!,
                  transport: t, retry: Self.fast)
    }

    static let describeAnswer = """
    <?xml version="1.0" encoding="UTF-8"?>
    <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
      <requestId>r-1</requestId>
      <reservationSet><item><reservationId>r-0a</reservationId><instancesSet><item>
        <instanceId>i-0abc</instanceId><instanceType>t3.large</instanceType>
        <instanceState><code>16</code><name>running</name></instanceState>
        <placement><availabilityZone>eu-west-1b</availabilityZone></placement>
        <privateIpAddress>10.0.1.5</privateIpAddress><ipAddress>203.0.113.5</ipAddress>
        <vpcId>vpc-1</vpcId><subnetId>subnet-1</subnetId>
        <groupSet><item><groupId>sg-1</groupId><groupName>a</groupName></item><item><groupId>sg-2</groupId></item></groupSet>
        <tagSet><item><key>Name</key><value>cp-1 &amp; co</value></item><item><key>role</key><value>cp</value></item></tagSet>
      </item></instancesSet></item></reservationSet>
    </DescribeInstancesResponse>
    """

    @Test func describeInstancesParsesAndSigns() async throws {
        let t = CannedTransport([(200, Self.describeAnswer)])
        let instances = try await client(t).describeInstances(filters: [EC2Filter("tag:role", ["cp"])])
        #expect(instances == [EC2Instance(instanceId: "i-0abc", state: "running", instanceType: "t3.large",
                                          availabilityZone: "eu-west-1b", privateIpAddress: "10.0.1.5",
                                          publicIpAddress: "203.0.113.5", vpcId: "vpc-1", subnetId: "subnet-1",
                                          tags: ["Name": "cp-1 & co", "role": "cp"], securityGroupIds: ["sg-1", "sg-2"])])
        let r = try #require(t.requests.first)
        #expect(r.method == "POST")
        #expect(String(decoding: r.body, as: UTF8.self)
                == "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Arole&Filter.1.Value.1=cp")
        let auth = try #require(r.headers.first { $0.name == "Authorization" }?.value)
        #expect(auth.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIATESTING/"))
        #expect(auth.contains("/eu-west-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="))
        #expect(r.headers.contains { $0.name == "Host" && $0.value == "ec2.test:8443" })
    }

    @Test func sessionTokenIsSent() async throws {
        let t = CannedTransport([(200, Self.describeAnswer)])
        var creds = testCredentials
        creds.sessionToken = Secret("the-token")
        _ = try await client(t, credentials: creds).describeInstances()
        let r = try #require(t.requests.first)
        #expect(r.headers.contains { $0.name == "X-Amz-Security-Token" && $0.value == "the-token" })
        #expect(r.headers.first { $0.name == "Authorization" }?.value.contains("x-amz-security-token") == true)
    }

    @Test func throttlingIsRetriedThenGivesUp() async throws {
        let throttled = (503, "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>")
        let t = CannedTransport([throttled, throttled, (200, Self.describeAnswer)])
        let found = try await client(t).describeInstances()
        #expect(found.count == 1 && t.count == 3)

        let always = CannedTransport([throttled])
        do {
            _ = try await client(always).describeInstances()
            Issue.record("expected an error")
        } catch let e as EC2Error {
            guard case .throttled(let action, let code, let attempts) = e else { Issue.record("\(e)"); return }
            #expect(action == "DescribeInstances" && code == "RequestLimitExceeded" && attempts == 4)
            #expect(always.count == 4)
        }
    }

    @Test func authAndPermissionErrorsNameTheAction() async throws {
        let auth = CannedTransport([(401, "<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors></Response>")])
        do {
            _ = try await client(auth).describeSecurityGroups(groupIds: ["sg-1"])
            Issue.record("expected an error")
        } catch let e as EC2Error {
            guard case .authFailure = e else { Issue.record("\(e)"); return }
            #expect("\(e)".contains("EC2 DescribeSecurityGroups: the credentials were not accepted (AuthFailure"))
            #expect("\(e)".contains("AKIATESTING"))
            #expect(auth.count == 1)  // not retried
        }
        // A message that echoes the secret (no real service does) is redacted all the same.
        let denied = CannedTransport([(403, "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation. test-secret-value-0123456789</Message></Error></Errors></Response>")])
        do {
            try await client(denied).authorizeIngress([IngressRule(groupId: "sg-1", ipProtocol: "tcp", fromPort: 22,
                                                                   toPort: 22, source: .cidr("10.0.0.0/8"))])
            Issue.record("expected an error")
        } catch let e as EC2Error {
            guard case .unauthorized(_, let code, _, _) = e else { Issue.record("\(e)"); return }
            #expect(code == "UnauthorizedOperation")
            #expect("\(e)".contains("EC2 AuthorizeSecurityGroupIngress: not allowed: the credentials need the IAM "
                                    + "permission ec2:AuthorizeSecurityGroupIngress (UnauthorizedOperation"))
            #expect(!"\(e)".contains("test-secret-value-0123456789"))
        }
        let other = CannedTransport([(400, "<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>The security group 'sg-9' does not exist</Message></Error></Errors></Response>")])
        await #expect(throws: EC2Error.self) { _ = try await client(other).describeSecurityGroups(groupIds: ["sg-9"]) }
        #expect(other.count == 1)
    }

    @Test func securityGroupParsing() async throws {
        let answer = """
        <DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><securityGroupInfo><item>
          <groupId>sg-1</groupId><groupName>cluster</groupName><vpcId>vpc-1</vpcId>
          <ipPermissions>
            <item><ipProtocol>tcp</ipProtocol><fromPort>6443</fromPort><toPort>6443</toPort>
              <groups><item><groupId>sg-1</groupId><description>bootstrap:demo kube-apiserver</description></item></groups>
              <ipRanges><item><cidrIp>198.51.100.7/32</cidrIp></item></ipRanges></item>
            <item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item><cidrIp>10.0.0.0/8</cidrIp></item></ipRanges></item>
          </ipPermissions>
        </item></securityGroupInfo></DescribeSecurityGroupsResponse>
        """
        let groups = try await client(CannedTransport([(200, answer)])).describeSecurityGroups(groupIds: ["sg-1"])
        #expect(groups.count == 1)
        #expect(groups[0].ingress.map(\.description) == ["sg-1: allow tcp/6443 from sg-1",
                                                          "sg-1: allow tcp/6443 from 198.51.100.7/32",
                                                          "sg-1: allow all traffic from 10.0.0.0/8"])
        #expect(groups[0].ingress[0].ruleDescription == "bootstrap:demo kube-apiserver")
    }

    @Test func transportFailureNamesTheEndpoint() async throws {
        let c = EC2Client(region: "eu-west-1", credentials: testCredentials,
                          endpoint: URL(string: "http://127.0.0.1:\(try LocalServer.freePort())/")!, retry: Self.fast)
        do {
            _ = try await c.describeInstances()
            Issue.record("expected an error")
        } catch let e as EC2Error {
            guard case .transport = e else { Issue.record("\(e)"); return }
            #expect("\(e)".contains("EC2 DescribeInstances: cannot reach http://127.0.0.1:"))
        }
    }
}
