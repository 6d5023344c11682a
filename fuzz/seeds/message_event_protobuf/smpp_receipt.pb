
evt-seedÈþÐ¯€œœ9‚}"iid:0A1B2C3D sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hello*0A1B2C3D0: