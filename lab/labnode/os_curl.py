"""curl: serves the lab's fixed URL table (labnode.assets.lookup). Unknown hosts fail with
"curl: (6) Could not resolve host" — no real network, ever. Loopback URLs (127.0.0.0/8, localhost) are
fetched for real (the lab's API endpoints live there)."""
import ipaddress
import os
import re
import ssl
import sys
import urllib.error
import urllib.request

from labnode import assets

USAGE = "curl: try 'curl --help' or 'curl --manual' for more information"
WITH_ARG = {"-o", "--output", "-H", "--header", "-X", "--request", "-d", "--data", "--data-binary", "--data-raw",
            "-w", "--write-out", "-m", "--max-time", "--connect-timeout", "--retry", "--retry-delay",
            "--retry-max-time", "--cacert", "--cert", "--key", "-A", "--user-agent", "-u", "--user", "-e",
            "--referer", "-T", "--upload-file", "--resolve", "-x", "--proxy", "--max-redirs", "-r", "--range",
            "-b", "--cookie", "-c", "--cookie-jar", "--output-dir", "-K", "--config", "--tlsv1.2", "--url"}
WITH_ARG.discard("--tlsv1.2")


class Opts:
    def __init__(self):
        self.fail = False
        self.fail_with_body = False
        self.silent = False
        self.show_error = False
        self.location = False
        self.output = None
        self.remote_name = False
        self.insecure = False
        self.cacert = None
        self.head = False
        self.include = False
        self.write_out = None
        self.method = None
        self.data = None
        self.headers = []
        self.create_dirs = False
        self.max_redirs = 50
        self.urls = []
        self.verbose = False


def parse(argv):
    o = Opts()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "=" in a and a.split("=", 1)[0] in WITH_ARG:
            a, val = a.split("=", 1)
            argv = argv[:i] + [a, val] + argv[i + 1:]
        if a == "--":
            o.urls += argv[i + 1:]
            break
        if a.startswith("-") and not a.startswith("--") and len(a) > 2:
            # bundled short options: -fsSL, -sSLo FILE, -o/FILE
            expanded = []
            for j, c in enumerate(a[1:]):
                expanded.append("-" + c)
                if "-" + c in WITH_ARG:
                    rest = a[2 + j:]
                    if rest:
                        expanded.append(rest)
                    break
            argv = argv[:i] + expanded + argv[i + 1:]
            a = argv[i]
        if a in WITH_ARG:
            if i + 1 >= len(argv):
                sys.stderr.write("curl: option %s: requires parameter\n%s\n" % (a, USAGE))
                sys.exit(2)
            val = argv[i + 1]
            i += 2
            if a in ("-o", "--output"):
                o.output = val
            elif a in ("-w", "--write-out"):
                o.write_out = val
            elif a in ("-X", "--request"):
                o.method = val
            elif a in ("-d", "--data", "--data-binary", "--data-raw"):
                o.data = val
            elif a in ("-H", "--header"):
                o.headers.append(val)
            elif a == "--cacert":
                o.cacert = val
            elif a == "--max-redirs":
                o.max_redirs = int(val)
            elif a == "--url":
                o.urls.append(val)
            continue
        if a in ("-f", "--fail"):
            o.fail = True
        elif a == "--fail-with-body":
            o.fail = o.fail_with_body = True
        elif a in ("-s", "--silent"):
            o.silent = True
        elif a in ("-S", "--show-error"):
            o.show_error = True
        elif a in ("-L", "--location"):
            o.location = True
        elif a in ("-O", "--remote-name"):
            o.remote_name = True
        elif a in ("-k", "--insecure"):
            o.insecure = True
        elif a in ("-I", "--head"):
            o.head = True
        elif a in ("-i", "--include"):
            o.include = True
        elif a in ("-v", "--verbose"):
            o.verbose = True
        elif a == "--create-dirs":
            o.create_dirs = True
        elif a in ("-#", "--progress-bar", "--compressed", "-q", "--disable", "-g", "--globoff", "-4", "-6",
                   "--ipv4", "--ipv6", "--http1.1", "--http2", "--tlsv1.2", "--no-progress-meter",
                   "--retry-connrefused", "--retry-all-errors", "-N", "--no-buffer", "-Z", "--parallel"):
            pass
        elif a.startswith("-") and a != "-":
            sys.stderr.write("curl: option %s: is unknown\n%s\n" % (a, USAGE))
            sys.exit(2)
        else:
            o.urls.append(a)
        i += 1
    return o


def err(o, code, msg):
    if not o.silent or o.show_error:
        sys.stderr.write("curl: (%d) %s\n" % (code, msg))
    return code


def host_of(url):
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(\[[^\]]+\]|[^/:?#]+)(?::(\d+))?", url)
    if not m:
        return None, None, None
    return m.group(1).lower(), m.group(2).strip("[]"), m.group(3)


def is_loopback(host):
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch(o, url):
    """(status, headers(list of (k,v)), body bytes, effective_url) or raises CurlError."""
    redirects = 0
    while True:
        scheme, host, port = host_of(url)
        if scheme is None:
            if "://" not in url:
                url = "http://" + url
                continue
            raise CurlError(3, "URL rejected: Malformed input to a URL function")
        if scheme not in ("http", "https"):
            raise CurlError(1, "Protocol \"%s\" not supported" % scheme)
        if is_loopback(host):
            return real_fetch(o, url)
        if host == "169.254.169.254":
            return imds(o, url)
        try:
            ipaddress.ip_address(host)
            # an IP literal outside loopback: the lab never sends traffic there
            raise CurlError(7, "Failed to connect to %s port %s after 0 ms: Couldn't connect to server"
                            % (host, port or (443 if scheme == "https" else 80)))
        except ValueError:
            pass
        hit = assets.lookup(url)
        if hit is None:
            raise CurlError(6, "Could not resolve host: %s" % host)
        status, body_fn, location = hit
        if status in (301, 302, 303, 307, 308):
            if o.location:
                redirects += 1
                if redirects > o.max_redirs:
                    raise CurlError(47, "Maximum (%d) redirects followed" % o.max_redirs)
                url = location
                continue
            body = b""
            return status, [("location", location), ("content-length", "0")], body, url
        if status == 200:
            body = body_fn()
            return 200, [("content-type", "application/octet-stream"), ("content-length", str(len(body)))], body, url
        body = body_fn() if body_fn else (
            b"<html>\r\n<head><title>%d Not Found</title></head>\r\n<body>\r\n<center><h1>%d Not Found</h1>"
            b"</center>\r\n</body>\r\n</html>\r\n" % (status, status))
        return status, [("content-type", "text/html"), ("content-length", str(len(body)))], body, url


def real_fetch(o, url):
    ctx = None
    if url.lower().startswith("https"):
        if o.insecure:
            ctx = ssl._create_unverified_context()
        else:
            ctx = ssl.create_default_context(cafile=o.cacert) if o.cacert else ssl.create_default_context()
    req = urllib.request.Request(url, data=o.data.encode() if o.data is not None else None,
                                 method=o.method or ("HEAD" if o.head else None))
    for h in o.headers:
        if ":" in h:
            k, v = h.split(":", 1)
            req.add_header(k.strip(), v.strip())
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, list(r.headers.items()), r.read(), r.geturl()
    except urllib.error.HTTPError as e:
        return e.code, list(e.headers.items()), e.read(), url
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise CurlError(60, "SSL certificate problem: unable to get local issuer certificate")
        if isinstance(reason, ConnectionRefusedError):
            _, host, port = host_of(url)
            raise CurlError(7, "Failed to connect to %s port %s after 0 ms: Couldn't connect to server"
                            % (host, port or (443 if url.startswith("https") else 80)))
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise CurlError(28, "Operation timed out")
        raise CurlError(7, "Failed to connect: %s" % reason)
    except (ConnectionResetError, ssl.SSLError) as e:
        raise CurlError(35, "OpenSSL SSL_connect: %s" % e)
    except TimeoutError:
        raise CurlError(28, "Operation timed out")


def imds(o, url):
    """The EC2 instance metadata service (IMDSv2: a PUT for a token first), answered from the host's facts."""
    import hashlib
    from labnode import common
    path = re.sub(r"^https?://[^/]+", "", url).split("?")[0] or "/"
    info = common.host_info()
    secret = hashlib.sha256(("imds " + common.host_name()).encode()).hexdigest()[:40]
    headers = {k.split(":")[0].strip().lower(): k.split(":", 1)[1].strip() for k in o.headers if ":" in k}
    if path == "/latest/api/token":
        if (o.method or "").upper() != "PUT":
            return 405, [], b"", url
        if "x-aws-ec2-metadata-token-ttl-seconds" not in headers:
            return 400, [], b"", url
        return 200, [("content-type", "text/plain")], ("AQAEA" + secret).encode(), url
    if headers.get("x-aws-ec2-metadata-token") != "AQAEA" + secret:
        return 401, [("content-type", "text/plain")], b"", url
    try:
        iid = open("/sys/class/dmi/id/board_asset_tag").read().strip()
    except OSError:
        iid = "i-0" + secret[:16]
    addr = common.host_address()
    ec2name = "ip-%s.ec2.internal" % addr.replace(".", "-")
    md = {"instance-id": iid, "local-ipv4": addr, "hostname": ec2name, "local-hostname": ec2name,
          "instance-type": "t3.medium" if int(info.get("cpus", 2)) <= 2 else "t3.xlarge",
          "placement/availability-zone": "us-east-1a", "placement/region": "us-east-1",
          "ami-id": "ami-0a0e5d9c7acc336f1", "mac": "0a:00:00:00:00:01"}
    if path in ("/latest/meta-data", "/latest/meta-data/"):
        body = "\n".join(sorted({k.split("/")[0] + ("/" if "/" in k else "") for k in md}))
        return 200, [], body.encode(), url
    key = path[len("/latest/meta-data/"):] if path.startswith("/latest/meta-data/") else None
    if key in md:
        return 200, [("content-type", "text/plain")], md[key].encode(), url
    if path == "/latest/dynamic/instance-identity/document":
        import json
        doc = {"instanceId": iid, "privateIp": addr, "instanceType": md["instance-type"], "region": "us-east-1",
               "availabilityZone": "us-east-1a", "imageId": md["ami-id"], "architecture": "x86_64"}
        return 200, [], json.dumps(doc, indent=2).encode(), url
    return 404, [("content-type", "text/html")], b"<?xml version=\"1.0\"?><html><body>Not Found</body></html>\n", url


class CurlError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code, self.msg = code, msg


def write_out(fmt, status, url):
    s = fmt.replace("%{http_code}", "%03d" % status).replace("%{response_code}", "%03d" % status)
    s = s.replace("%{url_effective}", url).replace("\\n", "\n")
    sys.stdout.write(s)
    sys.stdout.flush()


def main(tool, argv):
    o = parse(list(argv))
    if not o.urls:
        sys.stderr.write("curl: no URL specified\n%s\n" % USAGE)
        return 2
    rc = 0
    for url in o.urls:
        try:
            status, headers, body, eff = fetch(o, url)
        except CurlError as e:
            rc = err(o, e.code, e.msg)
            if o.write_out:
                write_out(o.write_out, 0, url)
            continue
        if o.fail and status >= 400:
            rc = err(o, 22, "The requested URL returned error: %d" % status)
            if not o.fail_with_body:
                if o.write_out:
                    write_out(o.write_out, status, eff)
                continue
        data = body
        if o.head or o.include:
            hdr = "HTTP/2 %d \r\n" % status + "".join("%s: %s\r\n" % (k, v) for k, v in headers) + "\r\n"
            data = hdr.encode() + (b"" if o.head else body)
        target = o.output
        if o.remote_name and target is None:
            target = os.path.basename(url.split("?", 1)[0]) or None
            if not target:
                rc = err(o, 23, "Remote file name has no length")
                continue
        if target and target != "-":
            try:
                if o.create_dirs and os.path.dirname(target):
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(data)
            except OSError as e:
                sys.stderr.write("Warning: Failed to open the file %s: %s\n" % (target, e.strerror))
                rc = err(o, 23, "Failure writing output to destination, passed %d returned 4294967295"
                         % len(data))
                continue
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        if o.write_out:
            write_out(o.write_out, status, eff)
    return rc
