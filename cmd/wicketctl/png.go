package main

import (
	"os"

	"wicket/decoder/qr"
)

// qrSize is the PNG size in pixels: a voucher of ~300 characters is a
// version 10-13 code (57-69 modules), so 600 px gives 8 px a module.
const qrSize = 600

func writeQRPNG(path, text string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := qr.EncodePNG(f, text, qrSize); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
