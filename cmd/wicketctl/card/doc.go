// Package card draws a printable voucher the size of an ID card (ID-1,
// 85.60 × 53.98 mm at 300 dpi): the voucher's QR code beside the holder's
// masked name and class, the issuer, the voucher kind, the expiry date and the
// whole voucher id, under a band in the code's colour; and, when given, the
// holder's photo for the attendant to compare with the face. The photo is
// only printed: it is in no QR code, record or message.
//
// Chinese text needs a CJK font from the system (Card.FontPath or a list of
// well-known paths); none is shipped. Without one the card is still drawn,
// with the built-in Go fonts, English labels and '*' for each rune they
// cannot show, and the Result says so.
package card
