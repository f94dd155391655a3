@problemName m
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 4
@classLabel true a b c
@data
1,2,3,4:0.5,0.25,-1,2e3:a
-1,-2,-3,-4:1,1,1,1:c
0,0,0,0:9,8,7,6:b
