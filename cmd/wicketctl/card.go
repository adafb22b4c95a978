package main

import (
	"encoding/hex"
	"fmt"
	"image"
	"os"

	"wicket/cmd/wicketctl/card"
	"wicket/decoder"
)

// readPhoto reads the holder's photo for the card (card.ReadPhoto).
func readPhoto(path string) (image.Image, error) { return card.ReadPhoto(path) }

// writeCard renders the printable voucher, with the holder's photo when
// photo is not nil, and tells the operator when the card had to fall back
// to Latin-only fonts.
func writeCard(e env, path, text string, c *decoder.Claims, font string, photo image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	res, err := card.WritePNG(f, card.Card{
		Text: text, Colour: c.Voucher.Colour.String(), MaskedName: c.Voucher.Name,
		Class: c.Voucher.Class.String(), Issuer: c.Issuer, Kind: c.Voucher.Kind.String(),
		Expires: c.ExpiryTime(), VoucherID: hex.EncodeToString(c.ID), FontPath: font, Photo: photo,
	})
	if err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "wicketctl issue -card: %s\n", w)
	}
	return nil
}
