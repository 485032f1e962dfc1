"""The portal's words in zh-CN (the default) and English: one table per language, same keys."""

COOKIE = "dsgw_lang"
DEFAULT = "zh-CN"
LANGUAGES = {"zh-CN": "中文", "en": "English"}

STRINGS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "数据空间网关门户",
        "nav.catalogue": "产品目录",
        "nav.contracts": "我的合约",
        "nav.auditor": "审计",
        "nav.disclosure": "年度公开",
        "signin.title": "登录(私钥不离开浏览器)",
        "signin.participant": "参与方编号",
        "signin.key": "私钥文件(JWK)",
        "signin.submit": "登录",
        "signin.signout": "退出",
        "signin.as": "已登录:",
        "signin.roles": "角色",
        "signin.memory": "令牌只保存在本页内存中,刷新页面即需重新登录。",
        "signin.needed": "此页需要先登录(右上角选择私钥文件)。",
        "signin.again": "令牌已过期或被拒绝:请退出后重新登录。",
        "signin.nokey": "请选择私钥文件并填写参与方编号。",
        "signin.badkey": "私钥文件不是 Ed25519 私钥 JWK(需要 kty OKP、crv Ed25519、x 和 d)",
        "signin.nocrypto": "此浏览器不支持 WebCrypto Ed25519,或页面不是经 HTTPS/本机地址打开的。",
        "loading": "加载中…",
        "error": "出错了",
        "catalogue.title": "产品目录",
        "catalogue.q": "关键词",
        "catalogue.grade": "分级",
        "catalogue.level": "级别",
        "catalogue.domain": "行业领域",
        "catalogue.delivery": "交付方式",
        "catalogue.public_interest": "仅公益",
        "catalogue.search": "搜索",
        "catalogue.total": "共 {n} 个产品",
        "catalogue.none": "没有符合条件的产品。",
        "catalogue.any": "不限",
        "product.title": "产品",
        "product.grade": "分级",
        "product.domain": "行业领域",
        "product.merchant": "商家",
        "product.status": "状态",
        "product.offers": "报价",
        "product.quality": "质量报告",
        "product.lineage": "数据血缘",
        "product.odrl": "ODRL 策略",
        "product.request": "申请此报价",
        "product.purpose": "用途",
        "offer.purposes": "允许用途",
        "offer.term": "期限",
        "offer.days": "{n} 天",
        "offer.seconds": "{n} 秒",
        "offer.rows": "行数配额",
        "offer.calls": "调用次数配额",
        "offer.price": "价格",
        "offer.fields": "可见字段",
        "offer.termination": "可终止方",
        "offer.region": "使用地域",
        "offer.onward_transfer": "允许转授",
        "offer.lawful_basis": "合法性基础",
        "yes": "是",
        "no": "否",
        "quality.dimension": "维度",
        "quality.score": "得分",
        "quality.method": "方法",
        "contracts.title": "我的合约",
        "contracts.note": "您作为使用方、提供方或持有方的合约,最新的在前,用量与配额并列。",
        "contracts.open": "按编号打开合约",
        "contracts.id": "合约编号",
        "contracts.go": "打开",
        "contracts.none": "还没有合约。",
        "contract.title": "合约",
        "contract.state": "状态",
        "contract.provider": "提供方",
        "contract.consumer": "使用方",
        "contract.purpose": "用途",
        "contract.period": "有效期",
        "contract.usage": "用量",
        "contract.document": "合约文本(RFC 8785 规范化 JSON)",
        "contract.hash": "文本哈希",
        "contract.signatures": "签名",
        "contract.sign_provider": "以提供方身份签署",
        "contract.sign_consumer": "以使用方身份签署并生效",
        "contract.signed": "已签署",
        "contract.unsigned": "未签署",
        "contract.approval": "需数据持有方批准",
        "contract.pull": "获取数据",
        "contract.download": "下载数据(JSON)",
        "exchange.title": "交付结果",
        "exchange.rows": "行数",
        "exchange.masked": "已脱敏字段",
        "exchange.watermark": "水印",
        "exchange.content_hash": "内容哈希",
        "exchange.receipt": "回执",
        "exchange.get_receipt": "取回完整回执并在浏览器中验证",
        "exchange.save_receipt": "保存回执",
        "auditor.title": "审计:账本",
        "auditor.timeline": "时间线(每天各类型条目数)",
        "auditor.entries": "条目",
        "auditor.inspect": "查看条目",
        "auditor.seq": "序号",
        "auditor.type": "类型",
        "auditor.time": "时间",
        "auditor.day": "日期",
        "auditor.count": "数量",
        "auditor.receipt": "在浏览器中验证回执",
        "auditor.receipt_note": (
            "用网关公钥(GET /ledger/keys)在本浏览器中检查:条目哈希(SHA-256)、"
            "签名(Ed25519)、RFC 9162 包含证明与检查点签名。不信任任何服务器端代码。"
        ),
        "auditor.load_receipt": "按序号取回回执",
        "auditor.receipt_json": "回执 JSON(可粘贴或修改)",
        "auditor.verify": "验证",
        "auditor.checkpoint": "最新检查点",
        "auditor.cut": "生成检查点",
        "verify.ok": "已验证",
        "verify.failed": "验证失败",
        "verify.check": "检查项",
        "verify.expected": "应为",
        "verify.found": "实际",
        "verify.entry": "条目 {seq}({type})由密钥 {kid} 签名",
        "verify.proven": "已在大小为 {size} 的签名检查点中证明包含",
        "verify.unproven": "尚无检查点覆盖此条目:已验证哈希与签名,包含证明稍后可取",
        "disclosure.title": "年度公开",
        "disclosure.year": "年份",
        "disclosure.show": "查看",
        "disclosure.period": "期间",
        "disclosure.publisher": "发布方",
        "disclosure.generated_at": "生成时间",
        "disclosure.totals": "合计",
        "disclosure.authorisations": "授权运营",
        "disclosure.products": "数据产品",
        "disclosure.holder": "数据持有方",
        "disclosure.operator": "运营方",
        "disclosure.resources": "数据资源",
        "disclosure.resource": "数据资源",
        "disclosure.product": "产品",
        "disclosure.fees": "费用与用量",
        "disclosure.total.authorisations": "授权数",
        "disclosure.total.products": "产品数",
        "disclosure.total.contracts": "合约数",
        "disclosure.total.contract_fees_fen": "合约费用",
        "disclosure.total.exchanges": "交付次数",
        "disclosure.total.rows_delivered": "交付行数",
        "disclosure.total.invoices": "账单数",
        "disclosure.total.charged_fen": "实际收费",
        "disclosure.total.voucher_fen": "数据券抵扣",
        "disclosure.total.refunded_fen": "退款",
        "disclosure.total.net_fen": "净收费",
        "disclosure.settlement": "结算依据",
        "disclosure.closed_periods": "已结算月份",
        "disclosure.open_periods": "未结算月份",
        "disclosure.complete": "全年已结算",
        "disclosure.publish_by": "公开截止日",
        "problem.network": "无法连接网关",
        "problem.status": "状态码",
    },
    "en": {
        "title": "Data-space gateway portal",
        "nav.catalogue": "Catalogue",
        "nav.contracts": "My contracts",
        "nav.auditor": "Audit",
        "nav.disclosure": "Yearly disclosure",
        "signin.title": "Sign in (the private key stays in this browser)",
        "signin.participant": "Participant id",
        "signin.key": "Private key file (JWK)",
        "signin.submit": "Sign in",
        "signin.signout": "Sign out",
        "signin.as": "Signed in as",
        "signin.roles": "roles",
        "signin.memory": "The token is kept in this page's memory only: reloading signs you out.",
        "signin.needed": "This page needs you to sign in first (open your key file, top right).",
        "signin.nokey": "Choose your private key file and enter your participant id.",
        "signin.again": "The token expired or was refused: sign out and sign in again.",
        "signin.badkey": "The key file is not an Ed25519 private JWK (kty OKP, crv Ed25519, x, d)",
        "signin.nocrypto": (
            "This browser has no WebCrypto Ed25519, or the page is not on HTTPS or loopback."
        ),
        "loading": "Loading…",
        "error": "Something went wrong",
        "catalogue.title": "Catalogue",
        "catalogue.q": "Text",
        "catalogue.grade": "Grade",
        "catalogue.level": "Level",
        "catalogue.domain": "Domain",
        "catalogue.delivery": "Delivery",
        "catalogue.public_interest": "Public interest only",
        "catalogue.search": "Search",
        "catalogue.total": "{n} products",
        "catalogue.none": "No product matches.",
        "catalogue.any": "any",
        "product.title": "Product",
        "product.grade": "Grade",
        "product.domain": "Domain",
        "product.merchant": "Merchant",
        "product.status": "Status",
        "product.offers": "Offers",
        "product.quality": "Quality report",
        "product.lineage": "Lineage",
        "product.odrl": "ODRL policy",
        "product.request": "Request this offer",
        "product.purpose": "Purpose",
        "offer.purposes": "Purposes allowed",
        "offer.term": "Term",
        "offer.days": "{n} days",
        "offer.seconds": "{n} seconds",
        "offer.rows": "Row quota",
        "offer.calls": "Call quota",
        "offer.price": "Price",
        "offer.fields": "Fields",
        "offer.termination": "Who may terminate",
        "offer.region": "Region",
        "offer.onward_transfer": "Onward transfer",
        "offer.lawful_basis": "Lawful basis",
        "yes": "yes",
        "no": "no",
        "quality.dimension": "Dimension",
        "quality.score": "Score",
        "quality.method": "Method",
        "contracts.title": "My contracts",
        "contracts.note": (
            "The contracts you are a consumer, provider or holder of, newest first, with their "
            "usage beside their quotas."
        ),
        "contracts.open": "Open a contract by id",
        "contracts.id": "Contract id",
        "contracts.go": "Open",
        "contracts.none": "No contract yet.",
        "contract.title": "Contract",
        "contract.state": "State",
        "contract.provider": "Provider",
        "contract.consumer": "Consumer",
        "contract.purpose": "Purpose",
        "contract.period": "Period",
        "contract.usage": "Usage",
        "contract.document": "Contract document (RFC 8785 canonical JSON)",
        "contract.hash": "Document hash",
        "contract.signatures": "Signatures",
        "contract.sign_provider": "Sign as the provider",
        "contract.sign_consumer": "Sign as the consumer (finalise)",
        "contract.signed": "signed",
        "contract.unsigned": "not signed",
        "contract.approval": "needs the data holder's approval",
        "contract.pull": "Pull data",
        "contract.download": "Download the data (JSON)",
        "exchange.title": "Delivery",
        "exchange.rows": "Rows",
        "exchange.masked": "Masked fields",
        "exchange.watermark": "Watermark",
        "exchange.content_hash": "Content hash",
        "exchange.receipt": "Receipt",
        "exchange.get_receipt": "Fetch the full receipt and verify it in the browser",
        "exchange.save_receipt": "Save the receipt",
        "auditor.title": "Audit: the ledger",
        "auditor.timeline": "Timeline (entries per type per day)",
        "auditor.entries": "Entries",
        "auditor.inspect": "Inspect an entry",
        "auditor.seq": "Seq",
        "auditor.type": "Type",
        "auditor.time": "Time",
        "auditor.day": "Day",
        "auditor.count": "Count",
        "auditor.receipt": "Verify a receipt in the browser",
        "auditor.receipt_note": (
            "Checked in this browser with the gateway's public keys (GET /ledger/keys): "
            "the entry's SHA-256 hash, its Ed25519 signature, the RFC 9162 inclusion proof "
            "and the checkpoint's signature. No server code is trusted for it."
        ),
        "auditor.load_receipt": "Fetch the receipt of seq",
        "auditor.receipt_json": "Receipt JSON (paste or edit)",
        "auditor.verify": "Verify",
        "auditor.checkpoint": "Latest checkpoint",
        "auditor.cut": "Cut a checkpoint",
        "verify.ok": "Verified",
        "verify.failed": "Verification failed",
        "verify.check": "check",
        "verify.expected": "expected",
        "verify.found": "found",
        "verify.entry": "entry {seq} ({type}) signed by key {kid}",
        "verify.proven": "proven in the signed checkpoint of size {size}",
        "verify.unproven": (
            "no checkpoint covers it yet: hash and signature verified; fetch the proof later"
        ),
        "disclosure.title": "Yearly disclosure",
        "disclosure.year": "Year",
        "disclosure.show": "Show",
        "disclosure.period": "Period",
        "disclosure.publisher": "Publisher",
        "disclosure.generated_at": "Generated at",
        "disclosure.totals": "Totals",
        "disclosure.authorisations": "Authorisations",
        "disclosure.products": "Data products",
        "disclosure.holder": "Holder",
        "disclosure.operator": "Operator",
        "disclosure.resources": "Resources",
        "disclosure.resource": "Resource",
        "disclosure.product": "Product",
        "disclosure.fees": "Fees and use",
        "disclosure.total.authorisations": "Authorisations",
        "disclosure.total.products": "Products",
        "disclosure.total.contracts": "Contracts",
        "disclosure.total.contract_fees_fen": "Contract fees",
        "disclosure.total.exchanges": "Exchanges",
        "disclosure.total.rows_delivered": "Rows delivered",
        "disclosure.total.invoices": "Invoices",
        "disclosure.total.charged_fen": "Fees actually charged",
        "disclosure.total.voucher_fen": "Paid by data vouchers",
        "disclosure.total.refunded_fen": "Refunded",
        "disclosure.total.net_fen": "Net fees",
        "disclosure.settlement": "From the settlement",
        "disclosure.closed_periods": "Months closed",
        "disclosure.open_periods": "Months not closed",
        "disclosure.complete": "Whole year closed",
        "disclosure.publish_by": "To be published by",
        "problem.network": "The gateway cannot be reached",
        "problem.status": "status",
    },
}


# The merchant's, holder's and admin's pages and the statement page (static/work.js), in one
# block: key -> (zh-CN, en).
_WORK: dict[str, tuple[str, str]] = {
    "nav.merchant": ("商家", "Merchant"),
    "nav.holder": ("数据持有方", "Holder"),
    "nav.admin": ("平台管理", "Admin"),
    "work.merchant": ("商家工作台", "Merchant's desk"),
    "work.holder": ("数据持有方工作台", "Holder's desk"),
    "work.admin": ("平台管理", "Platform administration"),
    "work.none": ("暂无。", "None."),
    "work.actions": ("操作", "Actions"),
    "work.reason": ("理由", "Reason"),
    "work.my_authorisations": ("授权运营协议", "Authorisations"),
    "work.my_products": ("我的产品", "My products"),
    "work.contracts_on_mine": ("我的产品上的合约", "Contracts on my products"),
    "work.statements": ("结算单", "Statements"),
    "work.statement_note": (
        "结算单在该月结算关账后生成。",
        "A statement exists once its month has been closed.",
    ),
    "work.open_statement": ("查看结算单", "Open the statement"),
    "work.no_statements": ("暂无结算单。", "No statements yet."),
    "work.authorisation": ("授权", "Authorisation"),
    "work.holder_id": ("持有方", "Holder"),
    "work.operator": ("运营方", "Operator"),
    "work.resources": ("数据资源", "Resources"),
    "work.resource": ("数据资源", "Resource"),
    "work.fee_cap": ("收费上限(每合约)", "Fee cap (per contract)"),
    "work.fee_cap_yuan": ("收费上限(元)", "Fee cap (yuan)"),
    "work.draft": ("起草产品", "Draft a product"),
    "work.product": ("产品", "Product"),
    "work.next": ("可转入状态", "Next states allowed"),
    "work.contract": ("合约", "Contract"),
    "work.consumer": ("需求方", "Consumer"),
    "work.approval": ("持有方审批", "Holder's approval"),
    "work.approved": ("已批准", "approved"),
    "work.awaiting_holder": ("待持有方审批", "awaiting the holder"),
    "work.offer": ("报价", "Offer"),
    "work.purposes": ("允许用途(逗号分隔)", "Purposes (comma separated)"),
    "work.term_days": ("期限(天)", "Term (days)"),
    "work.price_yuan": ("每合约价格(元)", "Price per contract (yuan)"),
    "work.per_call_yuan": ("每次调用(元)", "Per call (yuan)"),
    "work.draft_title": ("从授权起草产品", "Draft a product from an authorisation"),
    "work.kinds": ("产品类型", "Product kinds"),
    "work.share": ("收益分配", "Revenue share"),
    "work.share.holder": ("持有方", "Holder"),
    "work.share.operator": ("运营方", "Operator"),
    "work.share.platform": ("平台", "Platform"),
    "work.cap_note": (
        "每个价格都须在授权的收费上限 {cap} 之内;超出时网关拒绝并说明原因。",
        "Every price must be within the authorisation's fee cap of {cap}; above it the gateway "
        "refuses and says why.",
    ),
    "work.public_interest": ("公益产品(免费)", "Public interest (free)"),
    "work.product_name": ("产品名称", "Product name"),
    "work.description": ("说明", "Description"),
    "work.add_offer": ("再加一个报价", "Add an offer"),
    "work.save_draft": ("保存草稿", "Save the draft"),
    "work.status_reason": ("状态说明", "Reason of the state"),
    "work.derived_grade": ("派生分级(策略判定)", "Derived grade (by the policy)"),
    "work.open_data": ("开放数据", "Open data"),
    "work.exposure": ("按交付方式暴露的分级", "Grade exposed per delivery mode"),
    "work.do.submit": ("提交合规评估", "Submit for review"),
    "work.do.list": ("上架", "List"),
    "work.do.reject": ("驳回", "Reject"),
    "work.do.suspend": ("暂停", "Suspend"),
    "work.do.reinstate": ("恢复", "Reinstate"),
    "work.do.delist": ("下架", "Delist"),
    "work.do.approve": ("批准", "Approve"),
    "work.do.refuse": ("拒绝", "Refuse"),
    "work.do.revoke": ("撤销", "Revoke"),
    "work.do.grant": ("授权", "Grant"),
    "work.do.onboard": ("登记入驻", "Onboard"),
    "work.do.accept": ("受理", "Accept"),
    "work.do.review": ("审核通过", "Pass review"),
    "work.do.publicise": ("公示", "Publicise"),
    "work.do.code": ("赋码", "Code"),
    "work.statement": ("结算单", "Statement"),
    "work.print": ("打印", "Print"),
    "work.verify_statement": ("在浏览器中核验签名", "Verify the seal in this browser"),
    "work.party": ("当事方", "Party"),
    "work.period": ("结算期(年-月)", "Period (year-month)"),
    "work.owes": ("应付", "Owes"),
    "work.earns": ("应收", "Earns"),
    "work.format": ("格式", "Format"),
    "work.lines": ("明细", "Lines"),
    "work.invoice": ("发票", "Invoice"),
    "work.role": ("角色", "Role"),
    "work.amount": ("金额", "Amount"),
    "work.ceilings": ("收入上限", "Ceilings"),
    "work.ceiling": ("上限", "Ceiling"),
    "work.income": ("收入", "Income"),
    "work.excess": ("超出", "Above the ceiling"),
    "work.carried_in": ("上期结转", "Carried in"),
    "work.deducted": ("本期扣减", "Deducted"),
    "work.carried_out": ("结转下期", "Carried out"),
    "work.seal": ("签名与哈希", "Signature and hash"),
    "work.signature": ("签名", "Signature"),
    "work.ledger_entry": ("账本条目", "Ledger entry"),
    "work.seal_note": (
        "哈希为结算单 RFC 8785 规范形式的 SHA-256,签名为网关账本密钥的 Ed25519 签名;"
        "其哈希记录在账本上。",
        "The hash is SHA-256 of the statement's RFC 8785 canonical form, the signature the "
        "gateway ledger key's Ed25519 signature of it; the hash is on the ledger.",
    ),
    "work.expected": ("应为", "expected"),
    "work.found": ("实为", "found"),
    "work.valid_sig": ("有效签名,密钥", "a valid signature by"),
    "work.statement_ok": (
        "哈希与签名均由本浏览器核验(账本密钥 {kid})。",
        "hash and signature checked in this browser (ledger key {kid}).",
    ),
    "work.my_resources": ("我的数据资源", "My resources"),
    "work.approval_queue": ("重要数据审批队列", "Approval queue for important data"),
    "work.approval_note": (
        "重要数据上的合约须经持有方批准,商家才能签署。",
        "A contract on important data needs the holder's approval before the merchant signs.",
    ),
    "work.grant": ("授权运营方", "Authorise an operator"),
    "work.granted": ("已授权:{id}", "Granted: {id}"),
    "work.until": ("有效期至", "Valid until"),
    "work.no_coded": ("尚无已赋码的资源。", "No coded resource yet."),
    "work.code": ("编码", "Code"),
    "work.registration": ("登记", "Registration"),
    "work.registrations": ("登记记录", "Registrations"),
    "work.kind": ("类型", "Kind"),
    "work.publicity": ("公示期", "Publicity"),
    "work.certificate": ("登记证书", "Certificate"),
    "work.version": ("版本", "Version"),
    "work.rows": ("行数", "Rows"),
    "work.commitment": ("数据承诺值", "Dataset commitment"),
    "work.onboarding": ("入驻登记", "Onboarding"),
    "work.onboard_note": (
        "由平台管理员登记新参与方:只上传其公钥(私钥中的 d 不会发送)。",
        "The platform admin onboards a participant: only its public key is sent (a private "
        "key's d is dropped).",
    ),
    "work.name": ("名称", "Name"),
    "work.region": ("地域", "Region"),
    "work.public_key": ("公钥文件(JWK)", "Public key file (JWK)"),
    "work.roles": ("角色", "Roles"),
    "work.need_public_key": ("请选择公钥文件。", "Choose the public key file."),
    "work.onboarded": ("已入驻:{id}", "Onboarded: {id}"),
    "work.registration_queue": ("资源登记审核队列", "Registration review queue"),
    "work.window": ("公示秒数", "Publicity seconds"),
    "work.product_queue": ("产品合规评估队列", "Product review queue"),
    "work.suspensions": ("暂停与恢复", "Suspensions"),
    "work.participants": ("参与方", "Participants"),
    "work.participant": ("参与方", "Participant"),
    "work.products_live": ("已上架与已暂停的产品", "Listed and suspended products"),
}
for _key, (_zh, _en) in _WORK.items():
    STRINGS["zh-CN"][_key] = _zh
    STRINGS["en"][_key] = _en


# -- the public catalogue of open data (opendata.js) -----------------------------------------

_OPEN: dict[str, tuple[str, str]] = {
    "nav.open_data": ("开放数据目录", "Open data"),
    "open.title": ("开放数据目录", "Open data catalogue"),
    "open.intro": (
        "公共数据（L1，无个人信息）：无需合约，任何已认证的参与方均可调用获取；浏览无需登录。",
        "Public data (L1, no personal information): any authenticated participant pulls it "
        "without a contract; browsing needs no sign-in.",
    ),
    "open.none": ("没有符合条件的开放数据。", "No open data matches."),
    "open.signin": (
        "登录后可直接获取数据并核验回执。",
        "Sign in to pull the data and check its receipt.",
    ),
    "open.merchant": ("运营方", "Merchant"),
    "open.fields": ("字段", "Fields"),
    "open.endpoint": ("开放数据接口", "Open-data endpoint"),
    "open.purpose": ("用途", "Purpose"),
    "open.limit": ("行数", "Rows"),
    "open.pull": ("获取数据", "Pull data"),
}
for _key, (_zh, _en) in _OPEN.items():
    STRINGS["zh-CN"][_key] = _zh
    STRINGS["en"][_key] = _en

# -- a product's page for a visitor who has not signed in (opendata.js: publicProduct) --------

_PUBLIC_PRODUCT: dict[str, tuple[str, str]] = {
    "open.product_public": (
        "未登录：这里只显示开放数据目录已公开的内容。",
        "Not signed in: this page shows only what the open-data catalogue publishes.",
    ),
    "open.signin_to_request": ("登录后申请", "Sign in to request"),
    "open.product_signin": (
        "这个产品只向已登录的参与方展示（未登录时只能查看开放数据）。请先登录。",
        "This product is shown to signed-in participants only (without signing in, only open "
        "data can be viewed). Sign in first.",
    ),
}
for _key, (_zh, _en) in _PUBLIC_PRODUCT.items():
    STRINGS["zh-CN"][_key] = _zh
    STRINGS["en"][_key] = _en


def choose(asked: str | None, cookie: str | None) -> str:
    """Return the language to show: the one asked for, else the cookie's, else zh-CN."""
    for candidate in (asked, cookie):
        if candidate in STRINGS:
            return candidate
    return DEFAULT


# -- the auditor's trace, entry inspector, checkpoints and consistency pages (audit.js) --------

_AUDIT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "trace.link": "追溯此对象的全部账本条目",
        "trace.title": "追溯:{id}",
        "trace.note": (
            "账本中提到此编号的每一个条目,按顺序排列(与 dsgw trace 相同,来自 GET /ledger/entries);"
            "每个条目的哈希与签名都在本浏览器中用网关公钥核验。"
        ),
        "trace.ident": "产品或合约编号",
        "trace.go": "追溯",
        "trace.plot": "条目在时间轴上的分布",
        "trace.none": "{n} 个条目中没有提到 {id} 的。",
        "trace.by": "操作者",
        "trace.sig_ok": "哈希与签名已在浏览器中验证",
        "trace.count": "条目数",
        "trace.span": "时间范围",
        "trace.types": "类型",
        "trace.checked": "浏览器核验",
        "trace.checked_ok": "{n} 个条目的哈希与签名全部有效",
        "trace.checked_bad": "{n} 个条目核验失败",
        "entry.title": "账本条目 {seq}",
        "entry.check": "浏览器核验",
        "entry.check_ok": "哈希(SHA-256)与签名(Ed25519)有效",
        "entry.traces": "追溯其中的编号:",
        "checkpoints.title": "签名检查点",
        "checkpoints.note": "检查点列表与一致性证明(在浏览器中验证)",
        "checkpoints.explain": (
            "每个检查点是网关签名的 RFC 9162 树根(C2SP 格式)。签名在本浏览器中用"
            " GET /ledger/keys 的公钥验证。"
        ),
        "checkpoints.none": "还没有检查点。",
        "checkpoints.size": "大小",
        "checkpoints.root": "树根",
        "checkpoints.signature": "签名",
        "checkpoints.signed_by": "已由 {kid} 签名",
        "checkpoints.save": "保存",
        "consistency.title": "一致性证明",
        "consistency.note": (
            "选择较早(旧)与较晚(新)的两个检查点,或粘贴您之前保存的检查点作为旧检查点;页面从 "
            "GET /ledger/proofs/consistency 取回 RFC 9162 一致性证明,"
            "并在本浏览器中验证两个检查点的签名和证明:新账本只在旧账本之后追加,未改写任何条目。"
        ),
        "consistency.old": "旧",
        "consistency.new": "新",
        "consistency.saved": "您保存的检查点(可选,作为旧检查点)",
        "consistency.saved_placeholder": "dsgw.local/ledger\n1234\n…\n\n— dsgw.local/ledger …",
        "consistency.fetch": "取回证明并验证",
        "consistency.save": "保存证明",
        "consistency.json": "一致性证明 JSON(可修改)",
        "consistency.hashes": "证明哈希数",
        "consistency.ok": "大小 {new} 的账本是大小 {old} 的账本的延续",
        "consistency.pick": "请选择旧检查点和新检查点。",
        "consistency.saved_newer": "您保存的检查点比所选的新检查点更新:请选择更新的检查点。",
        "consistency.saved_differs": (
            "网关现在的大小 {size} 检查点与您保存的不同:证明以您保存的为准。"
        ),
        "schedule.rule": (
            "网关在最新检查点之后每 {every} 个条目、或最新检查点已超过 {seconds} 秒时的下一次写入时"
            "生成检查点;对超过 {seconds} 秒的条目请求回执也会生成一个。"
        ),
        "schedule.latest": "最新检查点:大小 {size},签于 {time}。",
        "schedule.never": "还没有检查点。",
        "schedule.due": "此条目的包含证明最迟于 {time} 可取。",
        "schedule.pending": (
            "此回执尚无包含证明:还没有检查点覆盖这个条目。条目的哈希与签名已验证;"
            "检查点生成后再次取回回执即可验证包含证明(页面到时会自动取回)。"
        ),
        "schedule.again": "再次取回回执",
    },
    "en": {
        "trace.link": "Trace it through the ledger",
        "trace.title": "Trace of {id}",
        "trace.note": (
            "Every ledger entry that names this id, in order (what dsgw trace prints, from GET "
            "/ledger/entries); each entry's hash and signature checked in this browser with the "
            "gateway's public keys."
        ),
        "trace.ident": "Product or contract id",
        "trace.go": "Trace",
        "trace.plot": "The entries on a time line",
        "trace.none": "None of the {n} entries names {id}.",
        "trace.by": "by",
        "trace.sig_ok": "hash and signature verified in the browser",
        "trace.count": "Entries",
        "trace.span": "From — to",
        "trace.types": "Types",
        "trace.checked": "Checked in the browser",
        "trace.checked_ok": "the hash and signature of all {n} entries hold",
        "trace.checked_bad": "{n} entries failed",
        "entry.title": "Ledger entry {seq}",
        "entry.check": "Checked in the browser",
        "entry.check_ok": "hash (SHA-256) and signature (Ed25519) hold",
        "entry.traces": "Trace the ids it names:",
        "checkpoints.title": "Signed checkpoints",
        "checkpoints.note": "the checkpoints and a consistency proof, verified in the browser",
        "checkpoints.explain": (
            "Each checkpoint is an RFC 9162 tree head the gateway signed (a C2SP note). Its "
            "signature is verified in this browser with the keys of GET /ledger/keys."
        ),
        "checkpoints.none": "No checkpoint yet.",
        "checkpoints.size": "Size",
        "checkpoints.root": "Root",
        "checkpoints.signature": "Signature",
        "checkpoints.signed_by": "signed by {kid}",
        "checkpoints.save": "Save",
        "consistency.title": "Consistency proof",
        "consistency.note": (
            "Pick an older (old) and a newer (new) checkpoint, or paste a checkpoint you saved "
            "earlier as the old one; the page fetches the RFC 9162 consistency proof from GET "
            "/ledger/proofs/consistency and verifies both checkpoints' signatures and the proof "
            "here: the newer log only appends to the older, rewriting no entry."
        ),
        "consistency.old": "Old",
        "consistency.new": "New",
        "consistency.saved": "A checkpoint you saved (optional, as the old one)",
        "consistency.saved_placeholder": "dsgw.local/ledger\n1234\n…\n\n— dsgw.local/ledger …",
        "consistency.fetch": "Fetch the proof and verify it",
        "consistency.save": "Save the proof",
        "consistency.json": "Consistency proof JSON (edit it to see a tampered one fail)",
        "consistency.hashes": "Proof hashes",
        "consistency.ok": "the log of size {new} extends the log of size {old}",
        "consistency.pick": "Pick an old and a new checkpoint.",
        "consistency.saved_newer": "Your saved checkpoint is newer than the one picked as new.",
        "consistency.saved_differs": (
            "The gateway's checkpoint of size {size} now differs from the one you saved: the "
            "proof is checked against yours."
        ),
        "schedule.rule": (
            "The gateway cuts a checkpoint once {every} entries follow the latest, or at the "
            "first append once the latest is {seconds} s old; asking for the receipt of an "
            "entry {seconds} s old cuts one too."
        ),
        "schedule.latest": "Latest checkpoint: size {size}, signed at {time}.",
        "schedule.never": "No checkpoint yet.",
        "schedule.due": "This entry's inclusion proof is due by {time}.",
        "schedule.pending": (
            "This receipt has no inclusion proof yet: no checkpoint covers the entry. Its hash "
            "and signature are verified; fetch the receipt again once a checkpoint is cut to "
            "verify its inclusion (the page fetches it by itself when it is due)."
        ),
        "schedule.again": "Fetch the receipt again",
    },
}
for _lang, _words in _AUDIT.items():
    STRINGS[_lang].update(_words)

# The consumer's compute queries on a contract page (static/compute.js), in one block:
# key -> (zh-CN, en).
_COMPUTE: dict[str, tuple[str, str]] = {
    "offer.compute": ("计算条款", "Compute terms"),
    "compute.rule.plaintext": ("可分组、可筛选、可聚合", "group, filter and aggregate"),
    "compute.rule.group_key": ("可分组、可筛选", "group and filter"),
    "compute.rule.aggregate": ("仅可聚合", "aggregate only"),
    "compute.rule.never": ("不可读取", "never read"),
    "compute.bins": ("分箱", "bins"),
    "compute.row": ("每行", "each row"),
    "compute.limits": (
        "隐私单位:{subject},每个主体至多 {k} 行;每次查询至多 {keys} 个分组字段、{filters} 个筛选",
        "privacy unit: {subject}, at most {k} rows each; at most {keys} group keys and "
        "{filters} filters a query",
    ),
    "compute.title": ("隐私计算查询(数据可用不可见)", "Compute query (the rows never leave)"),
    "compute.note": (
        "只能按报价声明的聚合、分组与筛选提问;"
        "每个结果都加了差分隐私噪声,每次查询都消耗隐私预算 ε。",
        "Only the aggregates, groups and filters the offer declares can be asked; every result "
        "carries differential-privacy noise, and every query spends privacy budget ε.",
    ),
    "compute.budget_last": (
        "剩余隐私预算(本次登录中最近一次查询的答复):",
        "Privacy budget left (from this sign-in's latest reply):",
    ),
    "compute.budget_now": (
        "剩余隐私预算(由策略按条款允许的最严格查询给出,查询前即可查看):",
        "Privacy budget left (set by the policy for the strictest query the terms allow, "
        "shown before any query):",
    ),
    "compute.budget_unreadable": (
        "暂时无法读取剩余隐私预算:",
        "The privacy budget left could not be read:",
    ),
    "compute.queries_left": ("还可查询次数", "Queries left"),
    "compute.budget_of": (
        "剩余 ε {remaining}(已用 {spent} / 共 {budget})",
        "ε {remaining} left ({spent} spent of {budget})",
    ),
    "compute.budget_contract": ("本合约的预算", "Budget of this contract"),
    "compute.budget_subject": (
        "本使用方在该资源上的预算(所有合约合计)",
        "Budget of this consumer on this resource (all its contracts)",
    ),
    "compute.none": ("不选", "None"),
    "compute.count": ("计数(不同主体数)", "Count (distinct subjects)"),
    "compute.aggregate": ("另一项聚合", "Another aggregate"),
    "compute.op.count": ("计数", "count"),
    "compute.op.sum": ("求和", "sum"),
    "compute.op.mean": ("平均值", "mean"),
    "compute.op.quantile": ("分位数", "quantile"),
    "compute.op.histogram": ("直方图", "histogram"),
    "compute.field": ("字段", "Field"),
    "compute.quantiles": ("分位点(如 0.25, 0.5)", "Quantiles (e.g. 0.25, 0.5)"),
    "compute.group_by": ("分组", "Group by"),
    "compute.filter": ("筛选", "Filter"),
    "compute.no_filter": ("不筛选", "No filter"),
    "compute.run": ("提交查询", "Run the query"),
    "compute.results": ("含噪声的结果", "Noisy results"),
    "compute.empty": (
        "没有可公布的分组:每个分组的含噪主体数都不足 {min}。",
        "No group can be released: each group's noisy subject count is below {min}.",
    ),
    "compute.threshold": (
        "只公布含噪主体数不少于 {min} 的分组;未公布的分组不留痕迹。",
        "Only groups whose noisy subject count is at least {min} are released; the others "
        "leave no trace.",
    ),
    "compute.privacy": ("隐私账目", "Privacy account"),
    "compute.eps_spent": ("本次消耗 ε", "ε spent by this query"),
    "compute.eps_per_query": ("每次查询 ε", "ε per query"),
    "compute.noise": ("噪声与误差界", "Noise and error bounds"),
    "compute.measure": ("度量", "Measure"),
    "compute.mechanism": ("机制", "Mechanism"),
    "compute.epsilon": ("ε", "ε"),
    "compute.scale": ("噪声尺度 b", "Noise scale b"),
    "compute.error": ("95% 误差界", "95 % error bound"),
    "compute.mech.laplace": ("拉普拉斯(连续)", "Laplace (continuous)"),
    "compute.mech.discrete_laplace": ("离散拉普拉斯", "discrete Laplace"),
    "compute.error_note": (
        "噪声绝对值以 95% 的概率小于误差界(b · ln 20)。",
        "The noise stays within the error bound (b · ln 20) with probability 0.95.",
    ),
    "compute.reason.PRIVACY_BUDGET_EXHAUSTED": (
        "隐私预算已用尽:再答复一次就会超出本合约或本使用方在该资源上的 ε 预算,"
        "网关拒绝了查询,没有消耗 ε。",
        "The privacy budget is spent: one more answer would exceed the ε budget of this "
        "contract or of this consumer on the resource, so the gateway refused it and spent "
        "nothing.",
    ),
    "compute.reason.COLUMN_RULE_VIOLATED": (
        "该列的规则不允许这样使用(例如对只能聚合的列分组,或读取禁止的列)。",
        "A column's rule does not allow this use (grouping on an aggregate-only column, or "
        "reading a column that is never read).",
    ),
    "compute.reason.COMPUTE_NOT_DECLARED": (
        "报价的计算条款没有声明这一项(聚合、字段边界、分组值或筛选)。",
        "The offer's compute terms do not declare this (the aggregate, a field's bounds, a key's "
        "values or the filter).",
    ),
    "compute.reason.COMPUTE_FAILED": (
        "计算引擎未能完成查询,没有消耗 ε;稍后再试。",
        "The compute engine could not finish the query and spent nothing; try again later.",
    ),
}
for _key, (_zh, _en) in _COMPUTE.items():
    STRINGS["zh-CN"][_key] = _zh
    STRINGS["en"][_key] = _en
