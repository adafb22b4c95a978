package verifier

// Reason is the typed outcome of a decision. Its string is stable: it is
// what the access log, MQTT records and docs/reason-codes.md use.
type Reason string

// Every reason a decision can carry. docs/reason-codes.md explains each one
// and what a technician does about it; a test checks the two agree.
const (
	ReasonOK Reason = "ok"

	// The code's text and structure.
	ReasonEmpty           Reason = "empty"
	ReasonTooLong         Reason = "too_long"
	ReasonBadPrefix       Reason = "bad_prefix"
	ReasonBadBase45       Reason = "bad_base45"
	ReasonBadZlib         Reason = "bad_zlib"
	ReasonTooLarge        Reason = "too_large"
	ReasonBadCBOR         Reason = "bad_cbor"
	ReasonBadCOSE         Reason = "bad_cose"
	ReasonAlgNotProtected Reason = "alg_not_protected"
	ReasonUnsupportedAlg  Reason = "unsupported_alg"
	ReasonBadClaims       Reason = "bad_claims"

	// Keys and signature.
	ReasonUnknownKid        Reason = "unknown_kid"
	ReasonBadSignature      Reason = "bad_signature"
	ReasonIssuerMismatch    Reason = "issuer_mismatch"
	ReasonKeyNotValid       Reason = "key_not_valid"
	ReasonKeyKindNotAllowed Reason = "key_kind_not_allowed"
	ReasonDCCSignerType     Reason = "dcc_signer_not_allowed"

	// Time.
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonExpired         Reason = "expired"
	ReasonValidityTooLong Reason = "validity_too_long"
	ReasonVoucherTooOld   Reason = "voucher_too_old"

	// Revocations and overrides.
	ReasonRevoked    Reason = "revoked"
	ReasonSuperseded Reason = "superseded"

	// Policy.
	ReasonColourYellow        Reason = "colour_yellow"
	ReasonColourRed           Reason = "colour_red"
	ReasonColourNotAllowed    Reason = "colour_not_allowed"
	ReasonKindNotAccepted     Reason = "kind_not_accepted"
	ReasonClassDenied         Reason = "class_denied"
	ReasonTestMissing         Reason = "test_missing"
	ReasonTestKindNotAccepted Reason = "test_kind_not_accepted"
	ReasonTestPositive        Reason = "test_positive"
	ReasonTestTooOld          Reason = "test_too_old"
	ReasonDosesInsufficient   Reason = "doses_insufficient"
	ReasonAttendantRequired   Reason = "attendant_required"
	ReasonAntiPassback        Reason = "anti_passback"

	// Issuers and profiles (mutual recognition).
	ReasonIssuerNotAccepted  Reason = "issuer_not_accepted"
	ReasonProfileNotAccepted Reason = "profile_not_accepted"

	// Temperature screening (the daemon, after the code is verified).
	ReasonFever            Reason = "fever"
	ReasonNoTemperature    Reason = "no_temperature"
	ReasonThermometerFault Reason = "thermometer_fault"

	// EU DCC content.
	ReasonDCCTypeNotAccepted       Reason = "dcc_type_not_accepted"
	ReasonDCCVaccinationIncomplete Reason = "dcc_vaccination_incomplete"
	ReasonDCCVaccinationTooRecent  Reason = "dcc_vaccination_too_recent"
	ReasonDCCVaccinationTooOld     Reason = "dcc_vaccination_too_old"
	ReasonDCCRecoveryNotYetValid   Reason = "dcc_recovery_not_yet_valid"
	ReasonDCCRecoveryExpired       Reason = "dcc_recovery_expired"
	ReasonDCCTestResult            Reason = "dcc_test_result_unknown"

	// The gate's own state.
	ReasonNoTrustData    Reason = "no_trust_data"
	ReasonClockUntrusted Reason = "clock_untrusted"
	ReasonTrustDataStale Reason = "trust_data_stale"
	ReasonInternal       Reason = "internal_error"
)

// Message is what the gate's display shows, short enough for a small screen.
type Message struct {
	Zh string `json:"zh"`
	En string `json:"en"`
}

// reasonInfo is the fixed text of each reason.
var reasonInfo = map[Reason]Message{
	ReasonOK:                  {"请通行", "Please pass"},
	ReasonEmpty:               {"未读到二维码", "No code read"},
	ReasonTooLong:             {"二维码无效", "Invalid code"},
	ReasonBadPrefix:           {"非本系统二维码", "Not a recognised code"},
	ReasonBadBase45:           {"二维码无效", "Invalid code"},
	ReasonBadZlib:             {"二维码无效", "Invalid code"},
	ReasonTooLarge:            {"二维码无效", "Invalid code"},
	ReasonBadCBOR:             {"二维码无效", "Invalid code"},
	ReasonBadCOSE:             {"二维码无效", "Invalid code"},
	ReasonAlgNotProtected:     {"二维码无效", "Invalid code"},
	ReasonUnsupportedAlg:      {"二维码无效", "Invalid code"},
	ReasonBadClaims:           {"二维码无效", "Invalid code"},
	ReasonUnknownKid:          {"签发机构未认证", "Issuer not recognised"},
	ReasonBadSignature:        {"二维码签名无效", "Code signature invalid"},
	ReasonIssuerMismatch:      {"签发机构不符", "Issuer mismatch"},
	ReasonKeyNotValid:         {"签发密钥已失效", "Issuer key not valid"},
	ReasonKeyKindNotAllowed:   {"签发密钥不可用于此类码", "Issuer key not allowed for this code"},
	ReasonDCCSignerType:       {"签发机构无权签发此类证书", "Signer not allowed for this certificate type"},
	ReasonNotYetValid:         {"二维码尚未生效", "Code not yet valid"},
	ReasonExpired:             {"二维码已过期，请刷新", "Code expired, please refresh"},
	ReasonValidityTooLong:     {"动态码有效期异常", "Dynamic code validity too long"},
	ReasonVoucherTooOld:       {"凭证过旧，请重新申领", "Voucher too old, please renew"},
	ReasonRevoked:             {"凭证已作废", "Voucher revoked"},
	ReasonSuperseded:          {"凭证已被新凭证取代", "Voucher replaced by a newer one"},
	ReasonColourYellow:        {"黄码：请居家并联系社区", "Yellow code: please go home"},
	ReasonColourRed:           {"红码：请原地等候工作人员", "Red code: please wait for staff"},
	ReasonColourNotAllowed:    {"健康码颜色不符合要求", "Code colour not accepted"},
	ReasonKindNotAccepted:     {"本通道不接受此类码", "Code type not accepted here"},
	ReasonClassDenied:         {"本通道不接受此类凭证", "Voucher class not accepted here"},
	ReasonTestMissing:         {"无核酸检测记录", "No test result"},
	ReasonTestKindNotAccepted: {"检测类型不符合要求", "Test type not accepted"},
	ReasonTestPositive:        {"检测结果阳性", "Test result positive"},
	ReasonTestTooOld:          {"核酸检测超时", "Test result too old"},
	ReasonDosesInsufficient:   {"疫苗接种剂次不足", "Not enough vaccine doses"},
	ReasonAttendantRequired:   {"请工作人员核验", "Attendant check required"},
	ReasonAntiPassback:        {"此码刚刚已通行", "Code already used here"},

	ReasonFever:                    {"体温异常，请配合复测", "High temperature: please wait for staff"},
	ReasonNoTemperature:            {"请先测量体温", "Please have your temperature taken"},
	ReasonThermometerFault:         {"测温设备故障", "Thermometer fault"},
	ReasonIssuerNotAccepted:        {"本通道不接受该地区的码", "Issuer not accepted here"},
	ReasonProfileNotAccepted:       {"本通道不接受此类证书", "Certificate type not accepted here"},
	ReasonDCCTypeNotAccepted:       {"本通道不接受此类证书", "Certificate type not accepted here"},
	ReasonDCCVaccinationIncomplete: {"疫苗接种未完成", "Vaccination not complete"},
	ReasonDCCVaccinationTooRecent:  {"疫苗接种时间过短", "Vaccination too recent"},
	ReasonDCCVaccinationTooOld:     {"疫苗接种已过有效期", "Vaccination no longer valid"},
	ReasonDCCRecoveryNotYetValid:   {"康复证明尚未生效", "Recovery not valid yet"},
	ReasonDCCRecoveryExpired:       {"康复证明已过期", "Recovery no longer valid"},
	ReasonDCCTestResult:            {"检测结果无法识别", "Test result not recognised"},
	ReasonNoTrustData:              {"设备未配置密钥", "Gate has no keys"},
	ReasonClockUntrusted:           {"设备时间异常", "Gate clock not trusted"},
	ReasonTrustDataStale:           {"设备数据过期", "Gate data out of date"},
	ReasonInternal:                 {"设备故障", "Gate fault"},
}

// Reasons lists every reason, in the order of the docs.
func Reasons() []Reason {
	return []Reason{
		ReasonOK, ReasonEmpty, ReasonTooLong, ReasonBadPrefix, ReasonBadBase45,
		ReasonBadZlib, ReasonTooLarge, ReasonBadCBOR, ReasonBadCOSE,
		ReasonAlgNotProtected, ReasonUnsupportedAlg, ReasonBadClaims,
		ReasonUnknownKid, ReasonBadSignature, ReasonIssuerMismatch,
		ReasonKeyNotValid, ReasonKeyKindNotAllowed, ReasonDCCSignerType, ReasonNotYetValid,
		ReasonExpired, ReasonValidityTooLong, ReasonVoucherTooOld,
		ReasonRevoked, ReasonSuperseded, ReasonColourYellow, ReasonColourRed,
		ReasonColourNotAllowed, ReasonKindNotAccepted, ReasonClassDenied,
		ReasonTestMissing, ReasonTestKindNotAccepted, ReasonTestPositive,
		ReasonTestTooOld, ReasonDosesInsufficient, ReasonAttendantRequired,
		ReasonAntiPassback, ReasonFever, ReasonNoTemperature, ReasonThermometerFault,
		ReasonIssuerNotAccepted, ReasonProfileNotAccepted,
		ReasonDCCTypeNotAccepted, ReasonDCCVaccinationIncomplete, ReasonDCCVaccinationTooRecent,
		ReasonDCCVaccinationTooOld, ReasonDCCRecoveryNotYetValid, ReasonDCCRecoveryExpired,
		ReasonDCCTestResult, ReasonNoTrustData, ReasonClockUntrusted,
		ReasonTrustDataStale, ReasonInternal,
	}
}

// Message returns the display text of a reason.
func (r Reason) Message() Message {
	if m, ok := reasonInfo[r]; ok {
		return m
	}
	return reasonInfo[ReasonInternal]
}
